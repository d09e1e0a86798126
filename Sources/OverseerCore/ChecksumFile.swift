import OverseerProtocol

/// The text of a `.sha256` file: `HEX` or `HEX  NAME` (sha256sum's format).
public enum ChecksumFile {
    /// The first 64-hex-digit word, lower-cased; nil when there is none.
    public static func sha256(in text: String) -> String? {
        guard let word = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "*" }).first else { return nil }
        let lower = word.lowercased()
        // ASCII only (Character.isHexDigit would also take the fullwidth forms ａ, ０).
        guard SHA256Hex.isValid(lower) else { return nil }
        return lower
    }
}

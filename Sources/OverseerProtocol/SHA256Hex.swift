/// A SHA-256 as overseerd writes it everywhere (logs, state, manifests, the
/// control socket): 64 lower-case hex digits.
public enum SHA256Hex {
    /// Whether `text` is exactly 64 lower-case hex digits (lower-case it first to accept both cases).
    public static func isValid(_ text: some StringProtocol) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48 ... 57).contains($0) || (97 ... 102).contains($0) }
    }
}

import OverseerCore
import OverseerFetch
import Testing

/// Inputs that broke a property fuzz/run checks (fuzz/README.md).
@Suite struct FuzzFindingsTests {
    /// Character.isHexDigit takes fullwidth digits and letters: a `.sha256` file of them
    /// gave a "checksum" no SHA-256 can equal, reported as a mismatch, not as a malformed file.
    @Test(arguments: [String(repeating: "\u{FF41}", count: 64), String(repeating: "\u{FF10}", count: 32) + String(repeating: "0", count: 32)])
    func checksumIsASCIIHexOnly(_ word: String) {
        #expect(ChecksumFile.sha256(in: word + "  app\n") == nil)
    }

    /// A `.minisig` with CRLF line ends was one line to the parser ("\r\n" is one Character)
    /// and rejected as "not a minisign signature file"; minisign itself reads it.
    @Test func signatureWithCRLFLineEnds() throws {
        let signature = base64(Array("ED".utf8) + Array(1 ... 8) + Array(repeating: 7, count: 64))
        let global = base64(Array(repeating: 9, count: 64))
        let lf = "untrusted comment: signature\n\(signature)\ntrusted comment: timestamp:1700000000\tfile:app\n\(global)\n"
        let parsed = try Minisign.Signature(parsing: lf)
        #expect(try Minisign.Signature(parsing: lf.replacing("\n", with: "\r\n")) == parsed)
        #expect(parsed.prehashed && parsed.timestamp == 1_700_000_000)
    }

    @Test func checksumStillTakesUpperCaseASCII() {
        let hex = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        #expect(ChecksumFile.sha256(in: "*" + hex + "\n") == hex.lowercased())
    }

    private func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        for start in stride(from: 0, to: bytes.count, by: 3) {
            let chunk = bytes[start ..< min(start + 3, bytes.count)]
            let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * UInt32($1.offset)) }
            for position in 0 ..< 4 {
                out.append(position <= chunk.count ? alphabet[Int(value >> (18 - 6 * UInt32(position)) & 63)] : UInt8(ascii: "="))
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

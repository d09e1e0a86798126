import CSodium

/// Several minisign signatures of one file (`URL.minisig` holding one block of
/// four lines per signer, one after another, as `cat a.minisig b.minisig`
/// writes them), and which trusted keys made a valid one.
extension Minisign {
    /// The most signature blocks read from one file.
    public static let maximumSignatures = 32

    /// Parses every block of `text`; a malformed block (or a line short of one) throws.
    public static func signatures(parsing text: String) throws(Failure) -> [Signature] {
        // By Unicode scalar, as `Signature(parsing:)`: CRLF files read as LF ones.
        let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
            .map { String(Substring($0).trimmingWhitespace()) }.filter { !$0.isEmpty }
        guard !lines.isEmpty else { throw Failure("the signature file is empty") }
        guard lines.count % 4 == 0 else {
            throw Failure("the signature file has \(lines.count) lines: each signature is 4 (untrusted comment, signature, trusted comment, global signature)")
        }
        guard lines.count / 4 <= maximumSignatures else {
            throw Failure("the signature file holds \(lines.count / 4) signatures, over \(maximumSignatures)")
        }
        var result: [Signature] = []
        for start in stride(from: 0, to: lines.count, by: 4) {
            do {
                result.append(try Signature(parsing: lines[start ..< start + 4].joined(separator: "\n")))
            } catch {
                throw Failure("signature \(start / 4 + 1): \(error)")
            }
        }
        return result
    }

    /// What checking the signatures of one file against trusted keys found.
    public struct Signers: Equatable, Sendable {
        /// The keys (base64 lines) that made a valid signature.
        public var keys: Set<String> = []
        /// Signatures by a trusted key that did not verify, each with why.
        public var invalid: [String] = []
        /// The oldest trusted timestamp among the valid signatures.
        public var oldestTimestamp: Int64?

        /// Why these signers are not enough, in one line: a bad signature by a trusted key
        /// says what was wrong with it, signatures by strangers only say whose they are.
        public func shortfall(required: Int, keys: [PublicKey], signatures: [Signature]) -> String {
            let strangers = signatures.filter { signature in !keys.contains { $0.keyID == signature.keyID } }
                .map { hex($0.keyID.reversed()) }
            let detail = invalid.first ?? strangers.first.map {
                "signed by another key (key id \($0), expected \(keys.map { hex($0.keyID.reversed()) }.joined(separator: " or ")))"
            }
            guard keys.count > 1 || required > 1 else { return detail ?? "no valid signature" }
            return "valid signatures by \(self.keys.count) of the \(keys.count) trusted key(s), \(required) required" + (detail.map { " (\($0))" } ?? "")
        }
    }

    /// SHA-256 of `bytes`, lower-case hex: the digest a manifest's sequence is remembered with.
    public static func sha256(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        _ = sodium_init()
        _ = crypto_hash_sha256(&digest, bytes, UInt64(bytes.count))
        return digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Which of `keys` made a valid signature of `contents` among `signatures`;
    /// a signature by a key not among them is skipped.
    public static func signers(of contents: [UInt8], signatures: [Signature], keys: [PublicKey]) -> Signers {
        signers(signatures, keys) { signature, key throws(Failure) in try verify(contents: contents, signature: signature, key: key) }
    }

    /// As `signers(of:signatures:keys:)`, for the file at `path` (read once per signature).
    public static func signers(ofFileAt path: String, signatures: [Signature], keys: [PublicKey]) -> Signers {
        signers(signatures, keys) { signature, key throws(Failure) in try verify(fileAt: path, signature: signature, key: key) }
    }

    private static func signers(_ signatures: [Signature], _ keys: [PublicKey],
                                check: (Signature, PublicKey) throws(Failure) -> Void) -> Signers {
        var found = Signers()
        // Each trusted key is tried once, on its first signature: a file stuffed with
        // signatures under one key id costs one check, not one per block.
        var tried: Set<[UInt8]> = []
        // A key id is not signed: the holder of one secret key can write its signature under any
        // id. One public key listed under two ids is credited once, or one signer meets a threshold of two.
        var credited: Set<[UInt8]> = []
        for signature in signatures {
            for key in keys where key.keyID == signature.keyID && !credited.contains(key.key) && tried.insert(key.keyID).inserted {
                do {
                    try check(signature, key)
                    credited.insert(key.key)
                    found.keys.insert(key.base64)
                    if let stamp = signature.timestamp { found.oldestTimestamp = min(found.oldestTimestamp ?? stamp, stamp) }
                } catch {
                    found.invalid.append("key \(hex(key.keyID.reversed())): \(error)")
                }
            }
        }
        return found
    }
}

extension Minisign.PublicKey {
    /// The key's base64 line, as a `.pub` file's second line holds it: how a
    /// key is named on the command line, in a manifest's `keys` and in the state.
    public var base64: String {
        let bytes = [UInt8(ascii: "E"), UInt8(ascii: "d")] + keyID + key
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = Array(bytes[index ..< min(index + 3, bytes.count)])
            let value = chunk.enumerated().reduce(0) { $0 | (Int($1.element) << (16 - 8 * $1.offset)) }
            for position in 0 ..< 4 {
                output.append(position <= chunk.count ? alphabet[(value >> (18 - 6 * position)) & 63] : UInt8(ascii: "="))
            }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }
}

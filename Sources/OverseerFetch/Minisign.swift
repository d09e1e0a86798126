import CSodium
import OverseerSystem

/// minisign public keys and signatures (https://jedisct1.github.io/minisign/),
/// checked with libsodium: Ed25519 over the file (legacy `Ed`) or over its
/// BLAKE2b-512 hash (prehashed `ED`), plus the global signature over the
/// trusted comment.
public enum Minisign {
    public struct Failure: Error, Equatable, Sendable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public struct PublicKey: Equatable, Sendable {
        public let keyID: [UInt8]
        public let key: [UInt8]

        /// Parses a key file's text (comment line, then the base64 line) or the base64 line alone.
        public init(parsing text: String) throws(Failure) {
            let line = text.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }
                .last { !$0.isEmpty && !$0.hasPrefix("untrusted comment:") } ?? ""
            let bytes = try Minisign.base64(line, what: "public key")
            guard bytes.count == 42, bytes[0] == UInt8(ascii: "E"), bytes[1] == UInt8(ascii: "d") else {
                throw Failure("not a minisign Ed25519 public key (expected 42 bytes starting with Ed)")
            }
            keyID = Array(bytes[2 ..< 10])
            key = Array(bytes[10 ..< 42])
        }
    }

    public struct Signature: Equatable, Sendable {
        public let prehashed: Bool
        public let keyID: [UInt8]
        public let signature: [UInt8]
        public let trustedComment: String
        public let globalSignature: [UInt8]

        /// The `timestamp:N` of the trusted comment, if it has one.
        public var timestamp: Int64? {
            for field in trustedComment.split(separator: "\t") where field.hasPrefix("timestamp:") {
                return Int64(field.dropFirst("timestamp:".count))
            }
            return nil
        }

        /// Parses a `.minisig` file.
        public init(parsing text: String) throws(Failure) {
            // By Unicode scalar: in a CRLF file "\r\n" is one Character, not a "\n" (minisign reads CRLF files).
            let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
                .map { Substring($0).trimmingWhitespace(keepInner: true) }
            guard lines.count >= 4, lines[0].hasPrefix("untrusted comment:"), lines[2].hasPrefix("trusted comment: ") else {
                throw Failure("not a minisign signature file (expected 4 lines: untrusted comment, signature, trusted comment, global signature)")
            }
            let bytes = try Minisign.base64(lines[1], what: "signature")
            guard bytes.count == 74, bytes[0] == UInt8(ascii: "E") else {
                throw Failure("bad signature line (expected 74 bytes starting with Ed or ED)")
            }
            switch bytes[1] {
            case UInt8(ascii: "d"): prehashed = false
            case UInt8(ascii: "D"): prehashed = true
            default: throw Failure("unknown signature algorithm")
            }
            keyID = Array(bytes[2 ..< 10])
            signature = Array(bytes[10 ..< 74])
            trustedComment = String(lines[2].dropFirst("trusted comment: ".count))
            globalSignature = try Minisign.base64(lines[3], what: "global signature")
            guard globalSignature.count == 64 else { throw Failure("bad global signature (expected 64 bytes)") }
        }
    }

    /// Checks `signature` of the file at `path` with `key`.
    public static func verify(fileAt path: String, signature: Signature, key: PublicKey) throws(Failure) {
        try checkKey(signature, key)
        let message: [UInt8]
        do {
            message = signature.prehashed ? try FileDigest.blake2b512(path) : try FileDigest.contents(path)
        } catch {
            throw Failure("cannot read \(path): \(error)")
        }
        try verify(message: message, signature: signature, key: key)
    }

    /// Checks `signature` of `contents` (bytes already read, such as a release
    /// manifest: what is checked is exactly what is used) with `key`.
    public static func verify(contents: [UInt8], signature: Signature, key: PublicKey) throws(Failure) {
        try checkKey(signature, key)
        var message = contents
        if signature.prehashed {
            message = [UInt8](repeating: 0, count: 64)
            _ = crypto_generichash(&message, 64, contents, UInt64(contents.count), nil, 0)
        }
        try verify(message: message, signature: signature, key: key)
    }

    private static func checkKey(_ signature: Signature, _ key: PublicKey) throws(Failure) {
        guard signature.keyID == key.keyID else {
            throw Failure("signed by another key (key id \(hex(signature.keyID.reversed())), expected \(hex(key.keyID.reversed())))")
        }
        guard sodium_init() >= 0 else { throw Failure("libsodium failed to initialise") }
    }

    private static func verify(message: [UInt8], signature: Signature, key: PublicKey) throws(Failure) {
        let valid = signature.signature.withUnsafeBufferPointer { sig in
            message.withUnsafeBufferPointer { body in
                key.key.withUnsafeBufferPointer { pk in
                    crypto_sign_verify_detached(sig.baseAddress!, body.baseAddress, UInt64(body.count), pk.baseAddress!) == 0
                }
            }
        }
        guard valid else { throw Failure("the signature does not match the file") }
        let global = signature.signature + Array(signature.trustedComment.utf8)
        let globalValid = signature.globalSignature.withUnsafeBufferPointer { sig in
            global.withUnsafeBufferPointer { body in
                key.key.withUnsafeBufferPointer { pk in
                    crypto_sign_verify_detached(sig.baseAddress!, body.baseAddress, UInt64(body.count), pk.baseAddress!) == 0
                }
            }
        }
        guard globalValid else { throw Failure("the trusted comment's signature does not match (tampered comment)") }
    }

    static func base64(_ text: Substring, what: String) throws(Failure) -> [UInt8] {
        guard !text.isEmpty else { throw Failure("the \(what) is missing") }
        var output = [UInt8](repeating: 0, count: text.utf8.count)
        var length = 0
        let bytes = Array(text.utf8)
        let rc = bytes.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                input.baseAddress!.withMemoryRebound(to: CChar.self, capacity: input.count) { chars in
                    sodium_base642bin(out.baseAddress!, out.count, chars, input.count, nil, &length, nil,
                                      sodium_base64_VARIANT_ORIGINAL)
                }
            }
        }
        guard rc == 0, !bytes.isEmpty else { throw Failure("bad base64 in the \(what)") }
        return Array(output.prefix(length))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined().uppercased()
    }
}

extension Substring {
    func trimmingWhitespace(keepInner: Bool = true) -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" || first == "\r" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" || last == "\r" { result = result.dropLast() }
        return result
    }
}

import OverseerCore
import OverseerFetch

/// minisign key and signature files and `.sha256` files: the same text goes to all three.
func fuzzMinisign(_ bytes: UnsafeRawBufferPointer) {
    let input = text(bytes)
    if let key = try? Minisign.PublicKey(parsing: input) {
        require(key.keyID.count == 8 && key.key.count == 32, "public key from \(input.debugDescription)")
        // The same key written the way minisign writes it parses to the same key.
        let line = base64(Array("Ed".utf8) + key.keyID + key.key)
        let again = try? Minisign.PublicKey(parsing: "untrusted comment: minisign public key\n\(line)\n")
        require(again == key, "public key \(input.debugDescription) -> \(line) -> \(String(describing: again))")
    }
    // minisign itself reads CRLF files: the same text with CRLF line ends reads the same.
    let crlf = String(decoding: input.utf8.flatMap { $0 == 0x0a ? [0x0d, 0x0a] : [$0] }, as: UTF8.self)
    if let key = try? Minisign.PublicKey(parsing: input) {
        require((try? Minisign.PublicKey(parsing: crlf)) == key, "public key \(input.debugDescription) not read with CRLF line ends")
    }
    if let signature = try? Minisign.Signature(parsing: input) {
        let withCRLF = Result { () throws(Minisign.Failure) in try Minisign.Signature(parsing: crlf) }
        require((try? withCRLF.get()) == signature, "signature \(input.debugDescription) with CRLF line ends: \(withCRLF)")
        require(signature.keyID.count == 8 && signature.signature.count == 64 && signature.globalSignature.count == 64,
                "signature from \(input.debugDescription)")
        _ = signature.timestamp
        let algorithm = signature.prehashed ? "ED" : "Ed"
        let written = "untrusted comment: signature\n"
            + base64(Array(algorithm.utf8) + signature.keyID + signature.signature) + "\n"
            + "trusted comment: " + signature.trustedComment + "\n" + base64(signature.globalSignature) + "\n"
        let again = try? Minisign.Signature(parsing: written)
        require(again == signature, "signature \(input.debugDescription) -> \(written.debugDescription) -> \(String(describing: again))")
    }
    if let sha256 = ChecksumFile.sha256(in: input) {
        require(sha256.utf8.count == 64 && sha256.utf8.allSatisfy { (0x30 ... 0x39).contains($0) || (0x61 ... 0x66).contains($0) },
                "checksum \(sha256.debugDescription) from \(input.debugDescription) is not 64 lower-case hex digits")
    }
}

private func base64(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    var index = 0
    while index < bytes.count {
        let chunk = bytes[index ..< min(index + 3, bytes.count)]
        let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * UInt32($1.offset)) }
        for position in 0 ..< 4 {
            out.append(position <= chunk.count ? alphabet[Int(value >> (18 - 6 * UInt32(position)) & 63)] : UInt8(ascii: "="))
        }
        index += 3
    }
    return String(decoding: out, as: UTF8.self)
}

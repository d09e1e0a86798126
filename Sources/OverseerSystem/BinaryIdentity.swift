import Glibc
import CSodium

/// The SHA-256 of a file, as lower-case hex (OVERSEER_BINARY_ID).
public enum BinaryIdentity {
    /// Hashes the file at `path`, streaming it in 64 KiB blocks.
    public static func sha256(ofFileAt path: String) throws(SystemError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open", on: path) }
        defer { Posix.close(fd) }
        var state = crypto_hash_sha256_state()
        crypto_hash_sha256_init(&state)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = try Posix.retrying("read", on: path) {
                buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            }
            if count == 0 { break }
            crypto_hash_sha256_update(&state, buffer, UInt64(count))
        }
        var digest = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        crypto_hash_sha256_final(&state, &digest)
        return hex(digest)
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

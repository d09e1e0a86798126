import Glibc
import CSodium

/// Whole-file reads and hashes, streamed in 64 KiB blocks.
public enum FileDigest {
    /// BLAKE2b-512 of a file (minisign's prehash).
    public static func blake2b512(_ path: String) throws(SystemError) -> [UInt8] {
        // The state is a 64-byte aligned struct Swift cannot import: allocate it raw.
        let memory = UnsafeMutableRawPointer.allocate(byteCount: crypto_generichash_statebytes(), alignment: 64)
        defer { memory.deallocate() }
        let state = OpaquePointer(memory)
        crypto_generichash_init(state, nil, 0, 64)
        try forEachBlock(path) { block in
            _ = crypto_generichash_update(state, block.baseAddress, UInt64(block.count))
        }
        var digest = [UInt8](repeating: 0, count: 64)
        crypto_generichash_final(state, &digest, 64)
        return digest
    }

    /// A file's bytes (for legacy, non-prehashed signatures; minisign itself only makes those for small files).
    public static func contents(_ path: String) throws(SystemError) -> [UInt8] {
        var result: [UInt8] = []
        try forEachBlock(path) { result.append(contentsOf: $0) }
        return result
    }

    static func forEachBlock(_ path: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) throws(SystemError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open", on: path, errno: .init(rawValue: errno)) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError("read", on: path, errno: .init(rawValue: errno))
            }
            if count == 0 { return }
            buffer.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0.prefix(count))) }
        }
    }
}

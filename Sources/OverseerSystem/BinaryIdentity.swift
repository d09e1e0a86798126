import Glibc
import CGcrypt
import CSodium
import OverseerCore

/// The SHA-256 of a file, as lower-case hex (OVERSEER_BINARY_ID).
///
/// Hashed with libgcrypt, which uses the CPU's SHA extensions where there are
/// some; libsodium's portable SHA-256 is the fallback. Measured here (SHA-NI,
/// a 50 MiB program in the page cache, bench/startup's first start through
/// overseerd): ~36 ms of hashing with libgcrypt, ~155–205 ms with libsodium.
public enum BinaryIdentity {
    /// A hash with what is needed to judge whether it may be kept (`BinaryHashCache.record`).
    public struct Stamped: Sendable {
        public let sha256: String
        /// The file's stamp before and after the read (fstat of the descriptor read).
        public let stampBefore: BinaryHashCache.FileStamp
        public let stampAfter: BinaryHashCache.FileStamp
        /// The wall clock (ns) just before the file was opened.
        public let began: Int64
    }

    /// Hashes the file at `path`, streaming it in 64 KiB blocks.
    public static func sha256(ofFileAt path: String) throws(SystemError) -> String {
        try stampedSHA256(ofFileAt: path).sha256
    }

    /// Hashes the file at `path` and says when, and what it was before and after.
    public static func stampedSHA256(ofFileAt path: String) throws(SystemError) -> Stamped {
        let began = wallClockNanoseconds
        // Non-blocking: a FIFO put where the program belongs must not hold the reader for ever.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw .last("open", on: path) }
        defer { Posix.close(fd) }
        var info = stat()
        _ = try Posix.retrying("fstat", on: path) { fstat(fd, &info) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw SystemError("open", on: path, errno: .init(rawValue: EINVAL)) }
        let before = stamp(info)
        var digest = try gcryptSHA256(fd, path)
        if digest == nil { digest = try sodiumSHA256(fd, path) }
        return Stamped(sha256: hex(digest ?? []), stampBefore: before, stampAfter: try stamp(of: fd, path), began: began)
    }

    /// libgcrypt is initialised once, before its first use (gcry_check_version).
    private static let gcryptReady: Bool = gcry_check_version(nil) != nil

    /// nil when libgcrypt cannot hash (not initialised, or SHA-256 refused); the fd is read from its start.
    private static func gcryptSHA256(_ fd: Int32, _ path: String) throws(SystemError) -> [UInt8]? {
        var handle: gcry_md_hd_t?
        guard gcryptReady, gcry_md_open(&handle, Int32(GCRY_MD_SHA256.rawValue), 0) == 0, let handle else { return nil }
        defer { gcry_md_close(handle) }
        try forEachBlock(fd, path) { gcry_md_write(handle, $0.baseAddress, $0.count) }
        guard let result = gcry_md_read(handle, 0) else { return nil }
        return Array(UnsafeBufferPointer(start: result, count: 32))
    }

    private static func sodiumSHA256(_ fd: Int32, _ path: String) throws(SystemError) -> [UInt8] {
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw .last("lseek", on: path) }
        var state = crypto_hash_sha256_state()
        crypto_hash_sha256_init(&state)
        try forEachBlock(fd, path) { _ = crypto_hash_sha256_update(&state, $0.baseAddress, UInt64($0.count)) }
        var digest = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        crypto_hash_sha256_final(&state, &digest)
        return digest
    }

    /// The rest of `fd`, in 256 KiB blocks.
    private static func forEachBlock(_ fd: Int32, _ path: String, _ body: (UnsafeRawBufferPointer) -> Void) throws(SystemError) {
        var buffer = [UInt8](repeating: 0, count: 1 << 18)
        while true {
            let count = try Posix.retrying("read", on: path) {
                buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            }
            if count == 0 { return }
            buffer.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0.prefix(count))) }
        }
    }

    /// The stamp of the file at `path` (links followed), nil when it cannot be stat'd.
    public static func stamp(ofFileAt path: String) -> BinaryHashCache.FileStamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return stamp(info)
    }

    static func stamp(of fd: Int32, _ path: String) throws(SystemError) -> BinaryHashCache.FileStamp {
        var info = stat()
        try Posix.retrying("fstat", on: path) { fstat(fd, &info) }
        return stamp(info)
    }

    static func stamp(_ info: stat) -> BinaryHashCache.FileStamp {
        BinaryHashCache.FileStamp(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
            modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
            changed: Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec))
    }

    /// CLOCK_REALTIME in nanoseconds: the clock file timestamps are taken from.
    static var wallClockNanoseconds: Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
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

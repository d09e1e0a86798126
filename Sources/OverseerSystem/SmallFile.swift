import Glibc

/// Short text files overseerd reads whole: keys, `.sha256` and `.minisig` sidecars.
public enum SmallFile {
    /// The text of the regular file at `path` (links followed), at most `limit`
    /// bytes of it; nil when it is missing, unreadable or not a regular file. It
    /// never blocks: a FIFO put where a sidecar is expected is not opened for waiting.
    public static func read(_ path: String, limit: Int = 1 << 16) -> String? {
        bytes(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The bytes of the regular file at `path`, as `read` takes them.
    public static func bytes(_ path: String, limit: Int = 1 << 16) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { return nil }
        defer { Posix.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        return bytes(reading: fd, limit: limit)
    }

    /// At most `limit` bytes read from `fd` until its end (or a read error).
    static func bytes(reading fd: Int32, limit: Int) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while result.count < limit {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            if count <= 0 { break }
            result += buffer.prefix(min(count, limit - result.count))
        }
        return result
    }
}

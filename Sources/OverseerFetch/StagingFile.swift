#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSodium
import OverseerSystem

/// A new binary on its way in: a private file in the program's own directory
/// (so the final rename stays on one filesystem), removed unless installed.
public final class StagingFile {
    public let path: String
    /// Open for writing until `seal()`, read-only after.
    public private(set) var fd: Int32
    /// The path is no longer this object's to remove: installed, or removed already.
    private var released = false

    /// Creates `.NAME.overseerd-staging-RANDOM` beside `target`, mode 0600.
    public init(beside target: String) throws(SystemError) {
        let (directory, name) = Installer.split(target)
        let path = "\(directory)/.\(name).overseerd-staging-\(String(UInt32.random(in: 0 ... .max), radix: 16))"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError("open", on: path, errno: .init(rawValue: errno)) }
        self.path = path
        self.fd = fd
    }

    deinit {
        close(fd)
        if !released { unlink(path) }
    }

    /// Removes the file now, whoever else still holds this object (a helper
    /// that is still running on it, a pending callback); the descriptor stays
    /// open until the object goes. Once discarded, it is not removed again.
    public func discard() {
        guard !released else { return }
        released = true
        unlink(path)
    }

    /// Ends writing: the file is reopened read-only, because Linux refuses to
    /// execute a file that any process has open for writing (ETXTBSY).
    public func seal() throws(SystemError) {
        let reader = open(path, O_RDONLY | O_CLOEXEC)
        guard reader >= 0 else { throw .last("open", on: path) }
        close(fd)
        fd = reader
    }

    /// Marks the file as moved into place: it is not removed any more.
    public func markInstalled() { released = true }

    /// Empties the file (before a fetch writes it again).
    public func reset() {
        _ = ftruncate(fd, 0)
        _ = lseek(fd, 0, SEEK_SET)
    }

    /// Copies the file at `source` in, at most `limit` bytes; returns its size.
    public func copy(from source: String, limit: Int64) throws(StagingError) -> Int64 {
        reset()
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw StagingError("cannot open \(source): \(SystemError.last("open").reason)") }
        defer { close(input) }
        var total: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw StagingError("cannot read \(source): \(SystemError.last("read").reason)")
            }
            if count == 0 { break }
            total += Int64(count)
            if total > limit {
                throw StagingError("\(source) is larger than --max-binary-size (\(limit) bytes)")
            }
            var written = 0
            while written < count {
                let rc = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + written, count - written) }
                if rc < 0 {
                    if errno == EINTR { continue }
                    throw StagingError("cannot write the staging file \(path): \(SystemError.last("write").reason)")
                }
                written += rc
            }
        }
        return total
    }

    /// SHA-256 (hex) and size of what the file holds now.
    public func digest() throws(SystemError) -> (sha256: String, size: Int64) {
        let sha256 = try BinaryIdentity.sha256(ofFileAt: path)
        var info = stat()
        fstat(fd, &info)
        return (sha256, Int64(info.st_size))
    }
}

/// Staging a new binary failed.
public struct StagingError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

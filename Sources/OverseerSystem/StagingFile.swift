import Glibc
import COverseerShims
import CSodium

/// A new binary on its way in: a private file in the program's own directory
/// (so the final rename stays on one filesystem), removed unless installed.
public final class StagingFile: @unchecked Sendable {
    public let path: String
    /// Open for writing until `seal()`, read-only after.
    public private(set) var fd: Int32
    /// The path is no longer this object's to remove: installed, or removed already.
    private var released = false

    /// The file name prefix of staging files beside `target`.
    public static func namePrefix(of target: String) -> String {
        let (_, name) = Installer.split(target)
        return ".\(name).overseerd-staging-"
    }

    /// Creates `.NAME.overseerd-staging-RANDOM` beside `target`, mode 0600.
    public init(beside target: String) throws(SystemError) {
        let (directory, _) = Installer.split(target)
        let path = "\(directory)/\(Self.namePrefix(of: target))\(String(UInt32.random(in: 0 ... .max), radix: 16))"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError("open", on: path, errno: .init(rawValue: errno)) }
        self.path = path
        self.fd = fd
    }

    deinit {
        Posix.close(fd)
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
        let reader = try Posix.retrying("open", on: path) { open(path, O_RDONLY | O_CLOEXEC) }
        Posix.close(fd)
        fd = reader
    }

    /// Marks the file as moved into place: it is not removed any more.
    public func markInstalled() { released = true }

    /// Empties the file (before a fetch writes it again).
    public func reset() throws(SystemError) {
        try Posix.retrying("ftruncate", on: path) { ftruncate(fd, 0) }
        try Posix.retrying("lseek", on: path) { lseek(fd, 0, SEEK_SET) }
    }

    /// Gives the staged file mode `mode` (the start check runs it: 0700).
    public func setMode(_ mode: UInt32) throws(SystemError) {
        try Posix.retrying("fchmod", on: path) { fchmod(fd, mode_t(mode)) }
    }

    /// Copies the regular file at `source` in, at most `limit` bytes, hashing as
    /// it goes. Anything but a regular file (a FIFO, a device, a directory) is
    /// refused without blocking; a symlink to a regular file is followed. A file
    /// still open for writing, or that changes while it is copied, is refused
    /// as `StagingError.stillWritten`: it is taken once its writer is done.
    public func copy(from source: String, limit: Int64) throws(StagingError) -> (size: Int64, sha256: String) {
        do {
            try reset()
        } catch {
            throw StagingError("cannot empty the staging file \(path): \(error.reason)")
        }
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, for ever.
        let input = open(source, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard input >= 0 else { throw StagingError("cannot open \(source): \(SystemError.last("open").reason)") }
        defer { Posix.close(input) }
        var before = stat()
        guard fstat(input, &before) == 0 else { throw StagingError("cannot stat \(source): \(SystemError.last("fstat").reason)") }
        guard before.st_mode & S_IFMT == S_IFREG else {
            throw StagingError("\(source) is \(Self.kind(before.st_mode)), not a regular file; put the new binary there with a rename (mv)")
        }
        if Self.hasWriter(input) { throw .stillWritten(source) }
        var state = crypto_hash_sha256_state()
        crypto_hash_sha256_init(&state)
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
                var error = StagingError("\(source) is larger than --max-binary-size (\(limit) bytes)")
                error.isOverLimit = true
                throw error
            }
            crypto_hash_sha256_update(&state, buffer, UInt64(count))
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
        var after = stat()
        guard fstat(input, &after) == 0 else { throw StagingError("cannot stat \(source): \(SystemError.last("fstat").reason)") }
        if after.st_size != before.st_size || after.st_mtim.tv_sec != before.st_mtim.tv_sec
            || after.st_mtim.tv_nsec != before.st_mtim.tv_nsec || total != Int64(after.st_size) {
            throw .stillWritten(source)
        }
        var digest = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        crypto_hash_sha256_final(&state, &digest)
        return (total, BinaryIdentity.hex(digest))
    }

    /// Whether some process has the file open for writing: a read lease can
    /// only be taken on a file nobody writes (fcntl(2), F_SETLEASE). Where
    /// leases are not allowed (not the owner, no CAP_LEASE; some filesystems),
    /// nothing is known and false is returned: the size/mtime check after the
    /// copy still catches a file that changed meanwhile.
    static func hasWriter(_ fd: Int32) -> Bool { overseer_has_writer(fd) == 1 }

    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "a FIFO"
        case S_IFDIR: "a directory"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        default: "not a regular file"
        }
    }

    /// Size of what the file holds now.
    public func size() throws(SystemError) -> Int64 {
        var info = stat()
        try Posix.retrying("fstat", on: path) { fstat(fd, &info) }
        return Int64(info.st_size)
    }

    /// SHA-256 (hex) and size of what the file holds now.
    public func digest() throws(SystemError) -> (sha256: String, size: Int64) {
        let sha256 = try BinaryIdentity.sha256(ofFileAt: path)
        return (sha256, try size())
    }

    /// Removes the staging files of `target` that an overseerd killed mid-upgrade
    /// left (up to --max-binary-size each); called at start, before any upgrade.
    /// Nothing is removed while another process holds the directory's install
    /// lock. Returns the paths removed.
    public static func removeStale(beside target: String) -> [String] {
        let (directory, _) = Installer.split(target)
        let prefix = namePrefix(of: target)
        guard let lock = try? Installer.lockDirectory(directory) else { return [] }
        defer { Posix.close(lock) }
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var removed: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasPrefix(prefix) else { continue }
            let path = directory + "/" + name
            // Only regular files (never follow a link someone put there).
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            if unlink(path) == 0 { removed.append(path) }
        }
        return removed
    }
}

/// Staging a new binary failed.
public struct StagingError: Error, Sendable, CustomStringConvertible {
    public let description: String
    /// The source is still being written: not a failure, try again after its writer closes it.
    public let isStillWritten: Bool
    /// The source is longer than the limit it was copied with (read only up to it).
    public var isOverLimit = false

    public init(_ description: String, stillWritten: Bool = false) {
        self.description = description
        self.isStillWritten = stillWritten
    }

    static func stillWritten(_ source: String) -> StagingError {
        StagingError("\(source) is still being written; it is taken once its writer closes it", stillWritten: true)
    }
}

import Glibc
import OverseerCore

/// Where a program's `BinaryHashCache` entry is kept across overseerd's own
/// restarts: `DIRECTORY/binary-id-XXXXXXXXXXXXXXXX` (one file per program
/// path). What is read is never trusted beyond the entry's key check, and only
/// from a private place: the directory owned by this user or root and not
/// writable by others; the file regular (not a symbolic link, FIFO or
/// device: it is opened non-blocking and without following links), owned by
/// this user, not writable by others, at most `BinaryHashCache.maximumFileSize`.
public struct BinaryHashCacheFile: Sendable {
    /// What `load` found.
    public enum Loaded: Sendable {
        /// No file: nothing to say.
        case missing
        /// A file not used, and why (one line, for one warning).
        case ignored(String)
        case loaded(BinaryHashCache)
    }

    public let directory: String
    public let path: String

    /// The cache file for `program` (its absolute path) in `directory`.
    public init(directory: String, program: String) {
        self.directory = directory
        self.path = directory + "/" + BinaryHashCache.fileName(for: program)
    }

    /// Reads the file; never blocks and never throws.
    public func load() -> Loaded {
        if let problem = directoryProblem() { return .ignored(problem) }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW)
        guard fd >= 0 else {
            let error = Posix.errno
            if error == ENOENT { return .missing }
            if error == ELOOP { return .ignored("\(path) is a symbolic link") }
            return .ignored(SystemError("open", on: path, errno: .init(rawValue: error)).description)
        }
        defer { Posix.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .ignored(SystemError.last("fstat", on: path).description) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .ignored("\(path) is not a regular file") }
        guard info.st_uid == geteuid() else { return .ignored("\(path) is owned by uid \(info.st_uid), not by this user") }
        guard info.st_mode & 0o022 == 0 else {
            return .ignored("\(path) has mode \(String(info.st_mode & 0o7777, radix: 8)): others can write it")
        }
        guard info.st_size <= BinaryHashCache.maximumFileSize else {
            return .ignored("\(path) is \(info.st_size) bytes, over \(BinaryHashCache.maximumFileSize)")
        }
        let bytes = SmallFile.bytes(reading: fd, limit: BinaryHashCache.maximumFileSize + 1)
        do {
            return .loaded(try BinaryHashCache(parsing: String(decoding: bytes, as: UTF8.self)))
        } catch {
            return .ignored("\(path): \(error)")
        }
    }

    /// Replaces the file with the cache's entry (atomically, mode 0600); does
    /// nothing for a cache without an entry that may be written. Throws a
    /// one-line reason when the directory is not private or the write failed.
    public func save(_ cache: BinaryHashCache) throws(Failure) {
        guard let text = cache.encoded else { return }
        if let problem = directoryProblem() { throw Failure(description: problem) }
        do {
            try AtomicFile.write(text, to: path, mode: 0o600)
        } catch {
            throw Failure(description: error.description)
        }
    }

    /// Why the file could not be written: one line.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Why the directory is not a private place, nil when it is.
    func directoryProblem() -> String? {
        var info = stat()
        guard stat(directory, &info) == 0 else { return SystemError.last("stat", on: directory).description }
        guard info.st_mode & S_IFMT == S_IFDIR else { return "\(directory) is not a directory" }
        guard info.st_uid == geteuid() || info.st_uid == 0 else {
            return "\(directory) is owned by uid \(info.st_uid), not by this user or root"
        }
        guard info.st_mode & 0o022 == 0 else {
            return "\(directory) has mode \(String(info.st_mode & 0o7777, radix: 8)): others can write it"
        }
        return nil
    }
}

import Glibc
import SystemPackage

/// A small file overseerd keeps about itself across its own restarts (the
/// upgrade state, the program's hash cache), read only from a private place:
/// the directory owned by this user or root and not writable by others; the
/// file regular (not a symbolic link, FIFO or device: it is opened
/// non-blocking and without following links), owned by this user, not
/// writable by others, at most `limit` bytes. Anything else is one line saying
/// why, for one warning; nothing here blocks or traps on what it reads.
public struct PrivateStateFile: Sendable {
    /// What `read` found.
    public enum Loaded: Sendable, Equatable {
        /// No file: nothing to say.
        case missing
        /// A file not used, and why (one line).
        case ignored(String)
        case text(String)
    }

    /// Why a file could not be written: one line.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public let directory: String
    public let path: String
    public let limit: Int

    public init(directory: String, name: String, limit: Int) {
        self.directory = directory
        self.path = directory + "/" + name
        self.limit = limit
    }

    public func read() -> Loaded {
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
        guard info.st_size <= limit else { return .ignored("\(path) is \(info.st_size) bytes, over \(limit)") }
        return .text(String(decoding: SmallFile.bytes(reading: fd, limit: limit + 1), as: UTF8.self))
    }

    /// Replaces the file atomically (mode 0600). Throws a one-line reason when
    /// the directory is not private or the write failed.
    public func write(_ text: String) throws(Failure) {
        if let problem = directoryProblem() { throw Failure(description: problem) }
        do {
            try AtomicFile.write(text, to: path, mode: 0o600)
        } catch {
            throw Failure(description: error.description)
        }
    }

    /// Takes `PATH.lock` (created with mode 0600) with an exclusive `flock`,
    /// held while the returned fd stays open (close-on-exec, so a re-exec's new
    /// image takes it again). Throws a one-line reason when another process holds it.
    public func lock() throws(Failure) -> FileDescriptor {
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o600)
        guard fd >= 0 else { throw Failure(description: SystemError.last("open", on: lockPath).description) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let error = Posix.errno
            Posix.close(fd)
            if error == EWOULDBLOCK { throw Failure(description: "\(lockPath) is held by another process") }
            throw Failure(description: SystemError("flock", on: lockPath, errno: .init(rawValue: error)).description)
        }
        return FileDescriptor(rawValue: fd)
    }

    /// Why the directory is not a private place, nil when it is.
    public func directoryProblem() -> String? {
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

import Glibc

/// Puts a verified binary in place of the program, atomically, and back again.
///
/// The program path may be a symlink: the link stays and the file it points
/// to is replaced. The replaced file is kept as `TARGET.previous`.
public enum Installer {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// The file that is actually replaced for `programPath` (links followed).
    public static func target(of programPath: String) -> String {
        guard let resolved = realpath(programPath, nil) else { return programPath }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    public static func previousPath(of target: String) -> String { target + ".previous" }

    /// Moves `staged` over `target`: same mode and owner as the file it replaces,
    /// fsync'd, the old file kept as `TARGET.previous`, the directory fsync'd.
    /// `modificationTime` (seconds), when given, becomes the new file's mtime.
    public static func install(_ staged: StagingFile, over target: String, modificationTime: Int64? = nil) throws(Failure) {
        let (directory, _) = split(target)
        let lock = try lockDirectory(directory)
        defer { Posix.close(lock) }
        var current = stat()
        let exists = stat(target, &current) == 0
        let mode = exists ? current.st_mode & 0o7777 : 0o755
        guard fchmod(staged.fd, mode) == 0 else {
            throw Failure("cannot give \(staged.path) mode \(String(mode, radix: 8)): \(SystemError.last("fchmod").reason)")
        }
        // Without CAP_CHOWN (EPERM) the file keeps overseerd's own user, as any file it writes.
        if exists, fchown(staged.fd, current.st_uid, current.st_gid) != 0, errno != EPERM {
            throw Failure("cannot give \(staged.path) the owner of \(target): \(SystemError.last("fchown").reason)")
        }
        if let modificationTime {
            var times = [timespec(tv_sec: Int(modificationTime), tv_nsec: 0), timespec(tv_sec: Int(modificationTime), tv_nsec: 0)]
            guard futimens(staged.fd, &times) == 0 else {
                throw Failure("cannot set the modification time of \(staged.path): \(SystemError.last("futimens").reason)")
            }
        }
        guard fsync(staged.fd) == 0 else {
            throw Failure("cannot fsync \(staged.path): \(SystemError.last("fsync").reason)")
        }
        let previous = previousPath(of: target)
        if access(target, F_OK) == 0 {
            // ENOENT (no previous copy yet) is fine; anything else shows in link's error just below.
            _ = unlink(previous)
            guard link(target, previous) == 0 else {
                throw Failure("cannot keep the current binary as \(previous): \(SystemError.last("link").reason)")
            }
        }
        guard rename(staged.path, target) == 0 else {
            throw Failure("cannot move the new binary over \(target): \(SystemError.last("rename").reason)")
        }
        staged.markInstalled()
        syncDirectory(directory)
    }

    /// Puts `TARGET.previous` back in place of `target` (keeping the previous
    /// copy). With `expectedSHA256`, the file put back must hash to it (hashed
    /// through its own link, so a swap of `.previous` meanwhile changes
    /// nothing); returns its hash. Reads the whole file: run it off the loop.
    @discardableResult
    public static func rollback(_ target: String, expectedSHA256: String? = nil) throws(Failure) -> String? {
        let (directory, name) = split(target)
        // The service may be down until this is done: the lock is waited for a
        // while, then gone without (anyone who can read the directory can hold
        // it; the link and the rename below are atomic on their own).
        let lock = lockDirectory(directory, patience: 5)
        defer { if let lock { Posix.close(lock) } }
        let previous = previousPath(of: target)
        let temporary = "\(directory)/.\(name).overseerd-rollback-\(String(UInt32.random(in: 0 ... .max), radix: 16))"
        guard link(previous, temporary) == 0 else {
            throw Failure("cannot roll back \(target): \(previous) is missing (\(SystemError.last("link").reason))")
        }
        // Through the new link, whose inode is fixed now: a FIFO would block the read
        // below for ever, and a symbolic link would become the program.
        var info = stat()
        guard lstat(temporary, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            _ = unlink(temporary)
            throw Failure("cannot roll back \(target): \(previous) is not a regular file")
        }
        var restored: String?
        if let expectedSHA256 {
            do {
                restored = try BinaryIdentity.sha256(ofFileAt: temporary)
            } catch {
                _ = unlink(temporary)
                throw Failure("cannot roll back \(target): cannot read \(previous): \(error.reason)")
            }
            guard restored == expectedSHA256 else {
                _ = unlink(temporary)
                throw Failure("cannot roll back \(target): \(previous) is \(restored?.prefix(12) ?? "?"), not the last good binary \(expectedSHA256.prefix(12))")
            }
        }
        guard rename(temporary, target) == 0 else {
            _ = unlink(temporary)
            throw Failure("cannot roll back \(target): \(SystemError.last("rename").reason)")
        }
        syncDirectory(directory)
        return restored
    }

    /// The directory's lock, tried every 50 ms for up to `patience` seconds;
    /// nil when it could not be had (run it off the event loop).
    static func lockDirectory(_ directory: String, patience: Int) -> Int32? {
        for attempt in 0 ... patience * 20 {
            if let fd = try? lockDirectory(directory) { return fd }
            if attempt < patience * 20 { usleep(50_000) }
        }
        return nil
    }

    /// An exclusive flock on the directory: two overseerd instances never install into it at once.
    static func lockDirectory(_ directory: String) throws(Failure) -> Int32 {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure("cannot open \(directory): \(SystemError.last("open").reason)") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            Posix.close(fd)
            throw Failure("another process is installing into \(directory) (its lock is held); try again later")
        }
        return fd
    }

    /// fsync of the directory, so the rename survives a crash. Best effort: the
    /// rename has happened, and a failure here cannot be undone by anyone.
    static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            Posix.close(fd)
        }
    }

    static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }
}

import Glibc
import SystemPackage

/// The directory that holds overseerd's control socket, made or checked
/// before the socket goes in. Whoever can write that directory can put a
/// socket of their own in its place and answer `overseerd restart --wait`
/// for overseerd, so it must be writable by this user (or root) alone.
public enum RuntimeDirectory {
    /// Makes `directory` with mode 0700 if it is missing (its parent must
    /// exist), then checks what is there, on the opened directory itself
    /// (`O_DIRECTORY|O_NOFOLLOW`, then `fstat`): it must be a directory, not
    /// a symbolic link, owned by the effective uid or by root, and neither
    /// group- nor world-writable. Throws a `RuntimeDirectoryError` saying
    /// what is wrong and what to do; changes nothing that already existed.
    public static func prepare(directory: String) throws(RuntimeDirectoryError) {
        if mkdir(directory, 0o700) != 0 {
            let error = Posix.errno
            if error != EEXIST {
                throw RuntimeDirectoryError(directory, .cannotCreate(Errno(rawValue: error)))
            }
        }
        // lstat first, for the clearer message; the open below is what decides.
        var linkStatus = stat()
        if lstat(directory, &linkStatus) == 0, linkStatus.st_mode & S_IFMT == S_IFLNK {
            throw RuntimeDirectoryError(directory, .symbolicLink)
        }
        let fd: Int32
        do {
            fd = try Posix.retrying("open", on: directory) {
                open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
        } catch {
            switch error.errno {
            case .tooManySymbolicLinkLevels: throw RuntimeDirectoryError(directory, .symbolicLink)
            case .notDirectory: throw RuntimeDirectoryError(directory, .notADirectory)
            default: throw RuntimeDirectoryError(directory, .cannotOpen(error.errno))
            }
        }
        defer { Posix.close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw RuntimeDirectoryError(directory, .cannotOpen(Errno(rawValue: Posix.errno)))
        }
        try check(directory, owner: status.st_uid, mode: status.st_mode, effectiveUID: geteuid())
    }

    /// The rule `prepare` applies to what it found: pure, for the tests.
    static func check(_ directory: String, owner: uid_t, mode: mode_t, effectiveUID: uid_t) throws(RuntimeDirectoryError) {
        guard mode & S_IFMT == S_IFDIR else { throw RuntimeDirectoryError(directory, .notADirectory) }
        guard owner == effectiveUID || owner == 0 else {
            throw RuntimeDirectoryError(directory, .foreignOwner(owner: owner, expected: effectiveUID))
        }
        guard mode & 0o022 == 0 else {
            throw RuntimeDirectoryError(directory, .writableByOthers(mode: mode & 0o7777))
        }
    }
}

/// A runtime directory overseerd will not use: what is wrong with it, and what to do.
public struct RuntimeDirectoryError: Error, Sendable, CustomStringConvertible {
    enum Code: Sendable {
        case cannotCreate(Errno)
        case cannotOpen(Errno)
        case symbolicLink
        case notADirectory
        case foreignOwner(owner: uid_t, expected: uid_t)
        case writableByOthers(mode: mode_t)
    }

    /// The directory, as given.
    public let directory: String
    let code: Code

    init(_ directory: String, _ code: Code) {
        self.directory = directory
        self.code = code
    }

    /// One line: `control directory /tmp/overseerd-1000 is owned by uid 65534 …`.
    public var description: String {
        let elsewhere = "or give --control-socket PATH in a directory only you can write"
        switch code {
        case let .cannotCreate(errno):
            return "cannot create control directory \(directory): \(Self.lowercased(errno)) — create it with mode 0700, \(elsewhere)"
        case let .cannotOpen(errno):
            return "cannot open control directory \(directory): \(Self.lowercased(errno)) — \(elsewhere.dropFirst(3))"
        case .symbolicLink:
            return "control directory \(directory) is a symbolic link: someone else may point it elsewhere — remove it (overseerd makes it anew), \(elsewhere)"
        case .notADirectory:
            return "control directory \(directory) is not a directory — remove it (overseerd makes it anew), \(elsewhere)"
        case let .foreignOwner(owner, expected):
            let trusted = expected == 0 ? "by root" : "by uid \(expected) (you) or root"
            return "control directory \(directory) is owned by uid \(owner), not \(trusted): that user could answer in overseerd's place — remove it (overseerd makes it anew), \(elsewhere)"
        case let .writableByOthers(mode):
            return "control directory \(directory) has mode \(String(mode, radix: 8)): other users can write it and could answer in overseerd's place — chmod 700 \(directory), \(elsewhere)"
        }
    }

    private static func lowercased(_ errno: Errno) -> String {
        let text = errno.description
        guard let first = text.first else { return text }
        return first.lowercased() + text.dropFirst()
    }
}

import Glibc
import COverseerShims
import OverseerCore
import OverseerProtocol
import SystemPackage

/// The syscalls of a re-exec: the state in a memfd, fds made inheritable, execve.
public enum Handover {
    /// The state in a new memfd, read from its start by the next image.
    public static func write(_ state: HandoverState) throws(SystemError) -> FileDescriptor {
        let raw = overseer_memfd_create("overseerd-handover")
        guard raw >= 0 else { throw .last("memfd_create") }
        let fd = FileDescriptor(rawValue: raw)
        do {
            try Posix.writeAll(fd, Array(state.encoded.utf8), call: "write(memfd)")
            try Posix.retrying("lseek(memfd)") { lseek(raw, 0, SEEK_SET) }
        } catch {
            Posix.close(fd)
            throw error
        }
        return fd
    }

    /// Reads and closes the state fd an earlier image left.
    public static func read(fd raw: Int32) throws -> HandoverState {
        let fd = FileDescriptor(rawValue: raw)
        defer { Posix.close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while case let .bytes(count) = try Posix.read(fd, into: &buffer) {
            bytes += buffer.prefix(count)
        }
        return try HandoverState(parsing: String(decoding: bytes, as: UTF8.self))
    }

    /// execve; returns the errno when it fails. Signals stay blocked across it
    /// (the mask is kept), so none is lost while the new image starts.
    public static func exec(path: String, arguments: some Collection<String>, environment: [String]) -> Errno {
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        execve(path, argv, envp)
        return Errno(rawValue: Posix.errno)
    }

    /// The record of `listener` for the next image.
    public static func record(of listener: Listener) -> HandoverState.ListenerRecord {
        let bound: String? = if case let .bound(address) = listener.origin { address.description } else { nil }
        return .init(fd: listener.fd.rawValue, name: listener.name.rawValue, kind: listener.kind,
                     localAddress: listener.localAddress, createdPath: listener.createdPath,
                     inherited: listener.origin == .inherited, boundAddress: bound)
    }

    /// The listener an earlier image recorded, as it was: inherited, or bound from its `--listen`.
    public static func listener(from record: HandoverState.ListenerRecord) -> Listener {
        let name = (try? SocketName(record.name)) ?? .unnamed
        let origin: Listener.Origin
        if record.inherited {
            origin = .inherited
        } else if let text = record.boundAddress, let address = try? ListenAddress(parsing: text) {
            origin = .bound(address)
        } else {
            // An image from before addresses were recorded: the local address is the best there is.
            origin = .bound((try? ListenAddress(parsing: record.localAddress)) ?? .unix(path: record.localAddress))
        }
        return Listener(fd: FileDescriptor(rawValue: record.fd), name: name, origin: origin,
                        localAddress: record.localAddress, kind: record.kind, createdPath: record.createdPath)
    }
}

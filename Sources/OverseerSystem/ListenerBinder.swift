import Glibc
import OverseerCore
import OverseerProtocol
import SystemPackage

/// Creates overseerd's listeners, and adopts the ones it inherited.
public enum ListenerBinder {
    /// Adopts the sockets systemd (or another activator) handed overseerd,
    /// moving each to a close-on-exec fd so that only the child gets it.
    public static func adopt(_ inherited: ListenFDs) throws(ListenError) -> [Listener] {
        var result: [Listener] = []
        for (index, fd) in inherited.fds.enumerated() {
            let name = inherited.names[index]
            guard let kind = SocketAddress.kind(of: fd) else {
                throw ListenError("inherited fd \(fd) (\(name)) is not a socket — check the LISTEN_FDS given to overseerd")
            }
            do {
                try Posix.setCloseOnExec(fd)
            } catch {
                throw ListenError("cannot adopt inherited fd \(fd) (\(name)): \(error.reason)")
            }
            result.append(Listener(fd: FileDescriptor(rawValue: fd), name: name, origin: .inherited,
                                   localAddress: SocketAddress.local(of: fd), kind: kind, createdPath: nil))
        }
        return result
    }

    /// Binds one `--listen`. On failure nothing is left open or on disk. With
    /// `reusePort`, a UDP socket is bound with SO_REUSEPORT (and without
    /// SO_REUSEADDR), so that its generations' sockets can join its group.
    public static func bind(_ spec: ListenerSpec, backlog: Int32, unixMode: UInt32?, reusePort: Bool = false) throws(ListenError) -> Listener {
        switch spec.address {
        case let .inet(host, port, transport):
            return try bindInet(spec, host: host, port: port, transport: transport, backlog: backlog, reusePort: reusePort)
        case let .unix(path):
            return try bindUnix(spec, path: path, backlog: backlog, mode: unixMode)
        }
    }

    /// Closes listeners and removes the socket files overseerd made.
    public static func close(_ listeners: [Listener]) {
        for listener in listeners {
            Posix.close(listener.fd.rawValue)
            if let path = listener.createdPath { unlink(path) }
        }
    }

    // MARK: - inet

    private static func bindInet(_ spec: ListenerSpec, host: String?, port: UInt16, transport: ListenAddress.Transport,
                                 backlog: Int32, reusePort: Bool) throws(ListenError) -> Listener {
        let type = transport == .stream ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)
        let shown = spec.address.description
        if host == nil {
            // All interfaces: one IPv6 socket that takes IPv4 too, or IPv4 alone on a host without IPv6.
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            address.sin6_addr = in6addr_any
            do {
                return try withUnsafePointer(to: &address) { pointer throws(ListenError) in
                    try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw throws(ListenError) in
                        try bindAddress(spec, family: AF_INET6, type: type, address: raw,
                                        length: socklen_t(MemoryLayout<sockaddr_in6>.size), backlog: backlog, dualStack: true, reusePort: reusePort)
                    }
                }
            } catch let error where error.isAddressFamilyUnsupported {
                var address4 = sockaddr_in()
                address4.sin_family = sa_family_t(AF_INET)
                address4.sin_port = port.bigEndian
                return try withUnsafePointer(to: &address4) { pointer throws(ListenError) in
                    try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw throws(ListenError) in
                        try bindAddress(spec, family: AF_INET, type: type, address: raw,
                                        length: socklen_t(MemoryLayout<sockaddr_in>.size), backlog: backlog, dualStack: false, reusePort: reusePort)
                    }
                }
            }
        }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = type
        var results: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &results)
        guard rc == 0, let first = results else {
            let reason = String(cString: gai_strerror(rc))
            throw ListenError("cannot listen on \(shown) (\(spec.name)): cannot resolve \"\(host!)\": \(reason.lowercased()) — check the host name or use an IP address")
        }
        defer { freeaddrinfo(results) }
        return try bindAddress(spec, family: first.pointee.ai_family, type: type, address: first.pointee.ai_addr,
                               length: first.pointee.ai_addrlen, backlog: backlog, dualStack: false, reusePort: reusePort)
    }

    private static func bindAddress(_ spec: ListenerSpec, family: Int32, type: Int32, address: UnsafePointer<sockaddr>,
                                    length: socklen_t, backlog: Int32, dualStack: Bool, reusePort: Bool) throws(ListenError) -> Listener {
        let shown = spec.address.description
        let fd = socket(family, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw ListenError(address: shown, name: spec.name, error: .last("socket"))
        }
        do throws(SystemError) {
            var one: Int32 = 1
            var zero: Int32 = 0
            if type == Int32(SOCK_DGRAM.rawValue) {
                // Never SO_REUSEADDR on UDP: two UDP sockets with it share a port whoever owns them,
                // and any local user could bind ours and take its datagrams. SO_REUSEPORT (steered
                // flows) lets only this user's sockets join.
                if reusePort {
                    try Posix.retrying("setsockopt(SO_REUSEPORT)") {
                        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
                    }
                }
            } else {
                try Posix.retrying("setsockopt(SO_REUSEADDR)") {
                    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
                }
            }
            if dualStack {
                try Posix.retrying("setsockopt(IPV6_V6ONLY)") {
                    setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size))
                }
            }
            try Posix.retrying("bind", on: shown) { Glibc.bind(fd, address, length) }
            if type == Int32(SOCK_STREAM.rawValue) {
                try Posix.retrying("listen", on: shown) { Glibc.listen(fd, backlog) }
            }
        } catch {
            Posix.close(fd)
            throw ListenError(address: shown, name: spec.name, error: error)
        }
        return Listener(fd: FileDescriptor(rawValue: fd), name: spec.name, origin: .bound(spec.address),
                        localAddress: SocketAddress.local(of: fd), kind: SocketAddress.kind(of: fd) ?? "socket",
                        createdPath: nil)
    }

    // MARK: - unix

    private static func bindUnix(_ spec: ListenerSpec, path: String, backlog: Int32, mode: UInt32?) throws(ListenError) -> Listener {
        let shown = spec.address.description
        let abstract = path.hasPrefix("@")
        if !abstract { try removeStaleSocket(at: path, spec: spec) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ListenError(address: shown, name: spec.name, error: .last("socket")) }
        var (address, length) = SocketAddress.unix(path)
        var created = false
        do throws(SystemError) {
            // Create the file with the final permissions, so there is no moment
            // at which it is more open than asked for.
            let previousMask = mode.map { umask(mode_t(~$0 & 0o777)) }
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
            }
            let bindError = Posix.errno
            if let previousMask { umask(previousMask) }
            guard rc == 0 else { throw SystemError("bind", on: shown, errno: Errno(rawValue: bindError)) }
            created = !abstract
            if let mode, !abstract {
                try Posix.retrying("chmod", on: path) { chmod(path, mode_t(mode)) }
            }
            try Posix.retrying("listen", on: shown) { Glibc.listen(fd, backlog) }
        } catch {
            Posix.close(fd)
            if created { unlink(path) }
            let hint: String? = switch error.errno {
            case .permissionDenied: "check the permissions of the socket's directory"
            case .noSuchFileOrDirectory: "the directory does not exist; create it first"
            default: nil
            }
            throw ListenError(address: shown, name: spec.name, error: error, hint: hint)
        }
        return Listener(fd: FileDescriptor(rawValue: fd), name: spec.name, origin: .bound(spec.address),
                        localAddress: SocketAddress.local(of: fd), kind: "unix", createdPath: created ? path : nil)
    }

    /// A socket file left by a process that died is removed; a live socket or
    /// any other kind of file is an error.
    private static func removeStaleSocket(at path: String, spec: ListenerSpec) throws(ListenError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        let shown = spec.address.description
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw ListenError("cannot listen on \(shown) (\(spec.name)): \(path) exists and is not a socket — remove it or choose another path")
        }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { throw ListenError(address: shown, name: spec.name, error: .last("socket")) }
        defer { Posix.close(probe) }
        var (address, length) = SocketAddress.unix(path)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, length) }
        }
        if rc == 0 {
            throw ListenError("cannot listen on \(shown) (\(spec.name)): a running process is listening on \(path) — stop it or choose another path")
        }
        let error = Posix.errno
        guard error == ECONNREFUSED else {
            throw ListenError(address: shown, name: spec.name, error: SystemError("connect", on: path, errno: Errno(rawValue: error)))
        }
        if unlink(path) != 0 {
            throw ListenError(address: shown, name: spec.name, error: .last("unlink", on: path),
                              hint: "remove the stale socket file by hand")
        }
    }
}

extension ListenError {
    var isAddressFamilyUnsupported: Bool { errno == .addressFamilyNotSupported }
}

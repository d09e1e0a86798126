import OverseerCore
import OverseerProtocol
import SystemPackage

/// A listening (or, for UDP, bound) socket that overseerd owns and every
/// generation of the child inherits at the same fd number.
public struct Listener: Sendable {
    public enum Origin: Equatable, Sendable {
        /// Handed to overseerd by systemd (or another socket activator).
        case inherited
        /// Bound by overseerd from `--listen`.
        case bound(ListenAddress)
    }

    /// overseerd's own fd for it (close-on-exec).
    public let fd: FileDescriptor
    public let name: SocketName
    public let origin: Origin
    /// Where it is bound, from getsockname: `127.0.0.1:8080`, `[::]:8080`, `unix:/run/app.sock`.
    public let localAddress: String
    /// `tcp`, `udp`, `unix`, `unix-dgram`, …
    public let kind: String
    /// A socket file overseerd created and removes when it exits.
    public let createdPath: String?

    public init(fd: FileDescriptor, name: SocketName, origin: Origin, localAddress: String, kind: String, createdPath: String?) {
        self.fd = fd
        self.name = name
        self.origin = origin
        self.localAddress = localAddress
        self.kind = kind
        self.createdPath = createdPath
    }
}

/// A listener that could not be set up, worded for the operator.
public struct ListenError: Error, Sendable, CustomStringConvertible {
    public let description: String
    /// The errno behind it, when a system call failed.
    public let errno: Errno?

    init(_ description: String, errno: Errno? = nil) {
        self.description = description
        self.errno = errno
    }

    init(address: String, name: SocketName, error: SystemError, hint: String? = nil) {
        let suggestion = hint ?? ListenError.hint(for: error.errno)
        var text = "cannot listen on \(address) (\(name)): \(error.reason)"
        if let suggestion { text += " — \(suggestion)" }
        self.init(text, errno: error.errno)
    }

    static func hint(for errno: Errno) -> String? {
        switch errno {
        case .permissionDenied: "run as root or grant CAP_NET_BIND_SERVICE"
        case .addressInUse: "another process is listening there; stop it or choose another port"
        case .addressNotAvailable: "no interface on this host has that address"
        case .addressFamilyNotSupported: "this host has no such address family (IPv6 disabled?)"
        default: nil
        }
    }
}

import Glibc

/// A socket's file descriptor, as a typed value rather than a bare `Int32`.
public struct SocketDescriptor: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The fd number in this process.
    public let rawValue: Int32

    /// Wraps `rawValue`; it is not checked.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `fd N`.
    public var description: String { "fd \(rawValue)" }
}

/// The kind of a socket (`SO_TYPE`).
public enum SocketType: Hashable, Sendable, CustomStringConvertible {
    /// `SOCK_STREAM`: TCP, or a unix stream socket.
    case stream
    /// `SOCK_DGRAM`: UDP, or a unix datagram socket.
    case datagram
    /// `SOCK_SEQPACKET`.
    case sequencedPacket
    /// Any other type, by its number.
    case other(Int32)

    /// The type for a `SO_TYPE` value.
    public init(rawValue: Int32) {
        switch rawValue {
        case Int32(SOCK_STREAM.rawValue): self = .stream
        case Int32(SOCK_DGRAM.rawValue): self = .datagram
        case Int32(SOCK_SEQPACKET.rawValue): self = .sequencedPacket
        default: self = .other(rawValue)
        }
    }

    /// `stream`, `datagram`, `seqpacket` or `type N`.
    public var description: String {
        switch self {
        case .stream: "stream"
        case .datagram: "datagram"
        case .sequencedPacket: "seqpacket"
        case let .other(value): "type \(value)"
        }
    }
}

/// One socket this process was given (fd 3, 4, …), or bound itself through
/// the fallback of ``OverseerChild/socket(named:orBind:backlog:)``.
///
/// The properties that describe the socket (``type``, ``localAddress``,
/// ``isListening``, ``listenBacklog``) ask the kernel each time they are read.
public struct InheritedSocket: Sendable, Equatable, CustomStringConvertible {
    /// Its fd in this process (3, 4, …).
    public let fd: Int32
    /// Its name from LISTEN_FDNAMES (`unknown` when it has none).
    public let name: String
    /// False when this process bound the socket itself because nothing was passed.
    public let isInherited: Bool

    /// Describes fd `fd` named `name`; nothing is checked.
    public init(fd: Int32, name: String, isInherited: Bool = true) {
        self.fd = fd
        self.name = name
        self.isInherited = isInherited
    }

    /// The fd as a typed value.
    public var descriptor: SocketDescriptor { SocketDescriptor(rawValue: fd) }

    /// Its type (`SO_TYPE`), or nil when the fd is not an open socket.
    public var type: SocketType? {
        guard let value = intOption(SOL_SOCKET, SO_TYPE) else { return nil }
        return SocketType(rawValue: value)
    }

    /// Its address family (`AF_INET`, `AF_INET6`, `AF_UNIX`, …), or nil when the fd is not an open socket.
    public var family: Int32? { intOption(SOL_SOCKET, SO_DOMAIN) }

    /// Whether it is a listening socket (`SO_ACCEPTCONN`): false for UDP.
    public var isListening: Bool { intOption(SOL_SOCKET, SO_ACCEPTCONN) == 1 }

    /// Its local address (`getsockname`), or nil when the fd is not an open socket.
    public var localAddress: Address? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return nil }
        return Address(storage: storage, length: length)
    }

    /// Whether `O_NONBLOCK` is set. It is a flag of the open file description,
    /// which every generation shares: see <doc:Adopting-overseerd-in-a-Swift-server>.
    public var isNonBlocking: Bool {
        let flags = fcntl(fd, F_GETFL)
        return flags >= 0 && (flags & O_NONBLOCK) != 0
    }

    /// Closes this process's fd. This stops this process from accepting on the
    /// socket and leaves it working for every other process that holds it.
    /// Never `shutdown()` a shared listener: that stops it for all of them.
    public func close() {
        closeDescriptor(fd)
    }

    /// `http (fd 3, stream 127.0.0.1:8080)`.
    public var description: String {
        let kind = type.map(\.description) ?? "not a socket"
        let address = localAddress.map { " \($0)" } ?? ""
        return "\(name) (fd \(fd), \(kind)\(address))"
    }

    func intOption(_ level: Int32, _ option: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, level, option, &value, &length) == 0 else { return nil }
        return value
    }
}

func closeDescriptor(_ fd: Int32) { _ = close(fd) }

/// `socket(2)`, close-on-exec, callable where a method named `socket` hides the C function.
func openSocket(_ domain: Int32, _ type: Int32, _ protocolNumber: Int32 = 0) -> Int32 {
    socket(domain, type | Int32(SOCK_CLOEXEC.rawValue), protocolNumber)
}

/// The text of a NUL-terminated buffer.
func decodeCString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension InheritedSocket {
    /// The local address of a socket (`getsockname`).
    public enum Address: Hashable, Sendable, CustomStringConvertible {
        /// An IPv4 address and port.
        case ipv4(host: String, port: UInt16)
        /// An IPv6 address (without brackets) and port.
        case ipv6(host: String, port: UInt16)
        /// A unix socket: a path, `@name` for the abstract namespace, or empty when unbound.
        case unix(path: String)
        /// Another address family, by its number.
        case other(family: Int32)

        /// The port of an IP address; nil for other families.
        public var port: UInt16? {
            switch self {
            case let .ipv4(_, port), let .ipv6(_, port): port
            default: nil
            }
        }

        /// As overseerd writes addresses: `127.0.0.1:8080`, `[::1]:8080`, `unix:/run/app.sock`, `unix:@name`.
        public var description: String {
            switch self {
            case let .ipv4(host, port): "\(host):\(port)"
            case let .ipv6(host, port): "[\(host)]:\(port)"
            case let .unix(path): "unix:\(path)"
            case let .other(family): "family \(family)"
            }
        }

        /// Reads a `sockaddr` of `length` bytes.
        init(storage: sockaddr_storage, length: socklen_t) {
            var storage = storage
            switch Int32(storage.ss_family) {
            case AF_INET:
                self = withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                        var address = pointer.pointee.sin_addr
                        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                        inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
                        return .ipv4(host: decodeCString(text), port: UInt16(bigEndian: pointer.pointee.sin_port))
                    }
                }
            case AF_INET6:
                self = withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        var address = pointer.pointee.sin6_addr
                        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                        inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
                        return .ipv6(host: decodeCString(text), port: UInt16(bigEndian: pointer.pointee.sin6_port))
                    }
                }
            case AF_UNIX:
                // sun_path is not NUL-terminated for the abstract namespace: the
                // length says where it ends; a leading NUL marks an abstract name.
                let pathLength = max(0, Int(length) - MemoryLayout<sa_family_t>.size)
                self = withUnsafeBytes(of: &storage) { raw in
                    let path = raw.dropFirst(MemoryLayout<sa_family_t>.size).prefix(pathLength)
                    if let first = path.first, first == 0 {
                        return .unix(path: "@" + String(decoding: path.dropFirst(), as: UTF8.self))
                    }
                    return .unix(path: String(decoding: path.prefix { $0 != 0 }, as: UTF8.self))
                }
            default:
                self = .other(family: Int32(storage.ss_family))
            }
        }
    }
}

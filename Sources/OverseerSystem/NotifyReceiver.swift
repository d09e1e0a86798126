import Glibc
import COverseerShims
import OverseerProtocol
import SystemPackage

/// The NOTIFY_SOCKET overseerd gives one child: a datagram socket in the
/// abstract namespace that receives sd_notify messages with the sender's
/// credentials (SO_PASSCRED), so a message from another process can be told apart.
public struct NotifyReceiver: Sendable {
    /// One received datagram and who sent it.
    public struct Datagram: Sendable {
        public let message: NotifyMessage
        public let senderPID: Int32
        public let senderUID: UInt32
        public let truncated: Bool
        /// More fds came with it than overseerd takes in (all of them were closed).
        public let controlTruncated: Bool
        /// What `checkingSender` said of the sender when the datagram was taken.
        public let fromChild: Bool

        /// Why a datagram is not taken.
        public enum Rejection: String, Sendable {
            /// Not from the child or one of its processes.
            case stranger
            /// Over `maximumLength` bytes.
            case oversized
            /// More fds came with it than a notify message may carry (all were closed).
            case tooManyDescriptors
        }

        /// Why the datagram is not taken; nil when it is fine.
        public var rejection: Rejection? {
            if !fromChild { return .stranger }
            if controlTruncated { return .tooManyDescriptors }
            if truncated { return .oversized }
            return nil
        }
    }

    /// The largest datagram taken whole; longer ones are reported truncated.
    public static let maximumLength = 4096

    public let fd: FileDescriptor
    /// The value for the child's NOTIFY_SOCKET, e.g. `@overseerd/812/3/5f0c…`.
    public let address: String

    /// A socket bound by an earlier image of this process.
    public init(adopting fd: Int32, address: String) {
        self.fd = FileDescriptor(rawValue: fd)
        self.address = address
    }

    /// Binds a new socket under a unique abstract name.
    public init(label: String) throws(SystemError) {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .last("socket(AF_UNIX, SOCK_DGRAM)") }
        let name = "@overseerd/\(getpid())/\(label)/\(String(UInt64.random(in: 0 ... .max), radix: 16))"
        do {
            var one: Int32 = 1
            try Posix.retrying("setsockopt(SO_PASSCRED)") {
                setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            var (address, length) = SocketAddress.unix(name)
            try Posix.retrying("bind", on: name) {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
                }
            }
        } catch {
            Posix.close(fd)
            throw error
        }
        self.fd = FileDescriptor(rawValue: fd)
        self.address = name
    }

    /// Every datagram queued now; `checkingSender` is asked about each sender
    /// right after its datagram is taken, while the sender is most likely alive.
    public func receiveAll(checkingSender: (Int32) -> Bool = { _ in true }) -> [Datagram] {
        var result: [Datagram] = []
        var buffer = [UInt8](repeating: 0, count: Self.maximumLength)
        // Bounded, so that a child flooding the socket cannot starve the loop.
        for _ in 0 ..< 64 {
            var pid: pid_t = 0
            var uid: uid_t = 0
            var truncated: Int32 = 0
            let count = buffer.withUnsafeMutableBytes {
                overseer_recv_with_credentials(fd.rawValue, $0.baseAddress, $0.count, &pid, &uid, &truncated)
            }
            if count < 0 { break }
            let fromChild = checkingSender(pid)
            result.append(Datagram(message: NotifyMessage(parsing: buffer.prefix(count)),
                                   senderPID: pid, senderUID: uid,
                                   truncated: truncated & Int32(OVERSEER_RECEIVED_TRUNCATED) != 0,
                                   controlTruncated: truncated & Int32(OVERSEER_RECEIVED_CONTROL_TRUNCATED) != 0,
                                   fromChild: fromChild))
        }
        return result
    }

    public func close() { Posix.close(fd.rawValue) }
}

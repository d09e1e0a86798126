import Glibc
import SystemPackage

/// UDP sockets of one SO_REUSEPORT group: each generation of a steered UDP
/// listener gets its own, bound to the listener's address.
public enum ReusePortSocket {
    /// Whether `fd` was bound with SO_REUSEPORT (only such a socket has a group others can join).
    public static func hasReusePort(_ fd: FileDescriptor) -> Bool {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd.rawValue, SOL_SOCKET, SO_REUSEPORT, &value, &length) == 0 else { return false }
        return value != 0
    }

    /// A new close-on-exec UDP socket in the group of `member`: same family,
    /// same IPV6_V6ONLY, SO_REUSEPORT, bound to `member`'s local address. The
    /// kernel lets it join only if it is of the same user as the group.
    public static func join(groupOf member: FileDescriptor) throws(SystemError) -> FileDescriptor {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        try Posix.retrying("getsockname") {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(member.rawValue, $0, &length) }
            }
        }
        let family = Int32(storage.ss_family)
        let fd = try Posix.retrying("socket") {
            socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        do throws(SystemError) {
            var one: Int32 = 1
            let size = socklen_t(MemoryLayout<Int32>.size)
            try Posix.retrying("setsockopt(SO_REUSEPORT)") { setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, size) }
            if family == AF_INET6 {
                var v6only: Int32 = 0
                var optionLength = size
                try Posix.retrying("getsockopt(IPV6_V6ONLY)") {
                    getsockopt(member.rawValue, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &v6only, &optionLength)
                }
                try Posix.retrying("setsockopt(IPV6_V6ONLY)") {
                    setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &v6only, size)
                }
            }
            let shown = SocketAddress.local(of: member.rawValue)
            try Posix.retrying("bind", on: shown) {
                withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
                }
            }
        } catch {
            Posix.close(fd)
            throw error
        }
        return FileDescriptor(rawValue: fd)
    }
}

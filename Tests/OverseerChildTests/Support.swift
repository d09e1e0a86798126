#if canImport(Glibc)
import Glibc
#endif
@testable import OverseerChild

/// A unix datagram socket that receives sd_notify messages with the sender's credentials.
final class NotifyReceiver {
    let fd: Int32
    /// As NOTIFY_SOCKET would name it: a path, or `@name`.
    let address: String

    init(abstract: Bool) {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        precondition(fd >= 0)
        let unique = "overseer-child-test-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        address = abstract ? "@" + unique : "/tmp/" + unique + ".sock"
        var sockaddr = sockaddr_un()
        sockaddr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(address.utf8)
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &sockaddr.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let status = withUnsafePointer(to: &sockaddr) {
            $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        precondition(status == 0, "bind \(address): errno \(errno)")
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
        if address.hasPrefix("/") { unlink(address) }
    }

    /// The next datagram and the sender's pid from SCM_CREDENTIALS (nil when none was attached).
    func receive() -> (text: String, pid: Int32?)? {
        var data = [UInt8](repeating: 0, count: 4096)
        var control = [UInt8](repeating: 0, count: 64)
        return data.withUnsafeMutableBytes { dataBytes in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: dataBytes.baseAddress, iov_len: dataBytes.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = controlBytes.count
                    let count = recvmsg(fd, &message, 0)
                    guard count >= 0 else { return nil }
                    let text = String(decoding: dataBytes.prefix(count), as: UTF8.self)
                    // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } then
                    // struct ucred { pid_t pid; uid_t uid; gid_t gid; }.
                    var pid: Int32?
                    if message.msg_controllen >= 28 {
                        let level = controlBytes.load(fromByteOffset: 8, as: Int32.self)
                        let type = controlBytes.load(fromByteOffset: 12, as: Int32.self)
                        let scmCredentials: Int32 = 2
                        if level == SOL_SOCKET && type == scmCredentials {
                            pid = controlBytes.load(fromByteOffset: 16, as: Int32.self)
                        }
                    }
                    return (text, pid)
                }
            }
        }
    }
}

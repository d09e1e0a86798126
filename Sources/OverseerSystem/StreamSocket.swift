import Glibc
import COverseerShims
import SystemPackage

/// The calls on a listening or connected stream socket that the control socket needs.
public enum StreamSocket {
    /// Accepts one connection, non-blocking and close-on-exec; nil when none is queued.
    /// Throws on any other failure (EMFILE and ENFILE among them: the caller backs off).
    public static func accept(_ listener: FileDescriptor) throws(SystemError) -> FileDescriptor? {
        while true {
            let fd = overseer_accept(listener.rawValue)
            if fd >= 0 { return FileDescriptor(rawValue: fd) }
            switch Posix.errno {
            case EINTR, ECONNABORTED: continue
            case EAGAIN: return nil
            default: throw .last("accept4")
            }
        }
    }

    /// The pid and uid of the process at the other end of a unix socket (SO_PEERCRED).
    public static func peerCredentials(_ fd: FileDescriptor) throws(SystemError) -> (pid: Int32, uid: UInt32) {
        var pid: pid_t = 0
        var uid: uid_t = 0
        guard overseer_peer_credentials(fd.rawValue, &pid, &uid) == 0 else { throw .last("getsockopt(SO_PEERCRED)") }
        return (pid, uid)
    }

    /// Sends as much of `bytes` as the socket takes now: the count sent (0 when
    /// its buffer is full), or nil when the peer is gone. Never raises SIGPIPE.
    public static func sendSome(_ bytes: ArraySlice<UInt8>, to fd: FileDescriptor) -> Int? {
        while true {
            let count = bytes.withUnsafeBytes { Glibc.send(fd.rawValue, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count >= 0 { return count }
            switch Posix.errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return 0
            default: return nil
            }
        }
    }

    /// Ends the sending side (FIN), so the peer reads the end of the answer.
    public static func shutdownWrite(_ fd: FileDescriptor) {
        // ENOTCONN (the peer reset it) leaves nothing to do.
        _ = Glibc.shutdown(fd.rawValue, Int32(SHUT_WR))
    }

    /// Sends what fits without blocking; returns false when the peer cannot take it all
    /// (gone, or not reading). Never raises SIGPIPE.
    @discardableResult
    public static func send(_ bytes: [UInt8], to fd: FileDescriptor) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.send(fd.rawValue, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if count < 0, Posix.errno == EINTR { continue }
            if count <= 0 { return false }
            sent += count
        }
        return true
    }
}

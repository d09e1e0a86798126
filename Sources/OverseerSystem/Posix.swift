#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// The syscalls overseerd makes, in one place: each retries EINTR and throws a
/// `SystemError` naming the call.
public enum Posix {
    static var errno: Int32 {
        #if canImport(Glibc)
        Glibc.errno
        #else
        Musl.errno
        #endif
    }

    /// Calls `body` until it does not fail with EINTR; throws on -1.
    @discardableResult
    static func retrying<T: FixedWidthInteger>(_ call: String, on subject: String? = nil, _ body: () -> T) throws(SystemError) -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let error = errno
            if error == EINTR { continue }
            throw SystemError(call, on: subject, errno: Errno(rawValue: error))
        }
    }

    public static func close(_ fd: Int32) {
        // Linux closes the fd even when close fails with EINTR: never retry.
        _ = Glibc.close(fd)
    }

    public static func setCloseOnExec(_ fd: Int32) throws(SystemError) {
        let flags = try retrying("fcntl(F_GETFD)") { fcntl(fd, F_GETFD) }
        try retrying("fcntl(F_SETFD)") { fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
    }

    public static func setNonBlocking(_ fd: Int32) throws(SystemError) {
        let flags = try retrying("fcntl(F_GETFL)") { fcntl(fd, F_GETFL) }
        try retrying("fcntl(F_SETFL)") { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    /// Reads and discards what is readable (timerfd expirations and the like).
    public static func drain(_ fd: Int32) {
        var buffer = (UInt64(0), UInt64(0))
        _ = withUnsafeMutableBytes(of: &buffer) { Glibc.read(fd, $0.baseAddress, $0.count) }
    }

    public static var pid: Int32 { getpid() }
}

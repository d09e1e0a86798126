import Glibc
import COverseerShims
import SystemPackage

/// The syscalls overseerd makes, in one place: each retries EINTR and throws a
/// `SystemError` naming the call. Nothing outside OverseerSystem (and the C
/// shims) calls libc for a syscall.
public enum Posix {
    static var errno: Int32 { Glibc.errno }

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
        // EBADF would be a bug of ours; nothing else can be done about any error here.
        _ = Glibc.close(fd)
    }

    public static func close(_ fd: FileDescriptor) { close(fd.rawValue) }

    public static func setCloseOnExec(_ fd: Int32) throws(SystemError) {
        let flags = try retrying("fcntl(F_GETFD)") { fcntl(fd, F_GETFD) }
        try retrying("fcntl(F_SETFD)") { fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
    }

    /// Makes `fd` inherited across execve, or not.
    public static func setInheritable(_ fd: Int32, _ inheritable: Bool) throws(SystemError) {
        let flags = try retrying("fcntl(F_GETFD)") { fcntl(fd, F_GETFD) }
        try retrying("fcntl(F_SETFD)") { fcntl(fd, F_SETFD, inheritable ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC) }
    }

    public static func setNonBlocking(_ fd: Int32) throws(SystemError) {
        let flags = try retrying("fcntl(F_GETFL)") { fcntl(fd, F_GETFL) }
        try retrying("fcntl(F_SETFL)") { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    /// Reads and discards what is readable (timerfd expirations and the like).
    public static func drain(_ fd: Int32) {
        var buffer = (UInt64(0), UInt64(0))
        // EAGAIN (nothing there) is the only expected failure, and means the same as a read.
        _ = withUnsafeMutableBytes(of: &buffer) { Glibc.read(fd, $0.baseAddress, $0.count) }
    }

    public static var pid: Int32 { getpid() }
    public static var effectiveUserID: UInt32 { geteuid() }
    public static var userID: UInt32 { getuid() }

    /// A pipe, both ends close-on-exec, the read end non-blocking.
    public static func pipe() throws(SystemError) -> (read: FileDescriptor, write: FileDescriptor) {
        var fds: [Int32] = [-1, -1]
        try retrying("pipe2") { overseer_pipe_cloexec(&fds) }
        do {
            try setNonBlocking(fds[0])
        } catch {
            close(fds[0])
            close(fds[1])
            throw error
        }
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
    }

    /// /dev/null for reading, close-on-exec.
    public static func openNullDevice() throws(SystemError) -> FileDescriptor {
        FileDescriptor(rawValue: try retrying("open", on: "/dev/null") { open("/dev/null", O_RDONLY | O_CLOEXEC) })
    }

    /// What one non-blocking read gave.
    public enum ReadResult: Equatable, Sendable {
        case bytes(Int)
        case endOfFile
        /// Nothing to read now (EAGAIN).
        case wouldBlock
    }

    /// One read into `buffer`.
    public static func read(_ fd: FileDescriptor, into buffer: inout [UInt8]) throws(SystemError) -> ReadResult {
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress, $0.count) }
            if count > 0 { return .bytes(count) }
            if count == 0 { return .endOfFile }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return .wouldBlock }
            throw SystemError("read", errno: Errno(rawValue: error))
        }
    }

    /// Writes all of `bytes` to a blocking fd.
    public static func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8], call: String = "write") throws(SystemError) {
        var written = 0
        while written < bytes.count {
            let count = try retrying(call) {
                bytes.withUnsafeBytes { Glibc.write(fd.rawValue, $0.baseAddress! + written, bytes.count - written) }
            }
            written += count
        }
    }

    /// One line to standard error, in a single write so lines never interleave;
    /// a closed or full stderr loses it (there is nowhere else to say so).
    public static func writeStandardError(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    /// Ends the process at once with `code` (atexit handlers run, as for `exit`).
    public static func exit(_ code: Int32) -> Never { Glibc.exit(code) }

    /// Creates a directory; false when it exists already.
    @discardableResult
    public static func makeDirectory(_ path: String, mode: UInt32) throws(SystemError) -> Bool {
        while true {
            if mkdir(path, mode_t(mode)) == 0 { return true }
            if errno == EINTR { continue }
            if errno == EEXIST { return false }
            throw SystemError.last("mkdir", on: path)
        }
    }

    /// Renames `path` to `newPath` (in one file system, atomically).
    public static func rename(_ path: String, to newPath: String) throws(SystemError) {
        _ = try retrying("rename", on: path) { Glibc.rename(path, newPath) }
    }

    /// Whether `path` names a file this process may execute.
    public static func isExecutable(_ path: String) -> Bool { access(path, X_OK) == 0 }

    /// Uid and gid of the user called `name`, nil when there is none.
    public static func user(named name: String) -> (uid: UInt32, gid: UInt32)? {
        guard let entry = getpwnam(name) else { return nil }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    /// Device and inode of standard error (to compare with JOURNAL_STREAM); nil when it is closed.
    public static func standardErrorIdentity() -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }

    /// The wall clock, in whole seconds since the epoch (for records that outlive a boot's monotonic clock).
    public static var wallClockSeconds: Int64 { Int64(time(nil)) }

    /// The wall clock as an RFC 3339 UTC timestamp with microseconds: `2026-11-29T06:30:00.123456Z`.
    public static func utcTimestamp() -> String {
        var now = timespec()
        // CLOCK_REALTIME with a valid pointer cannot fail.
        _ = clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        _ = gmtime_r(&seconds, &parts)
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(padded(Int(parts.tm_year) + 1900, 4))-\(padded(Int(parts.tm_mon) + 1, 2))-\(padded(Int(parts.tm_mday), 2))"
            + "T\(padded(Int(parts.tm_hour), 2)):\(padded(Int(parts.tm_min), 2)):\(padded(Int(parts.tm_sec), 2))"
            + ".\(padded(now.tv_nsec / 1000, 6))Z"
    }

    /// Waits until `fd` is readable (or hung up), at most `timeout`; whether it became so.
    /// (Every signal is blocked in overseerd, so the wait is not cut short by one.)
    public static func waitReadable(_ fd: FileDescriptor, timeout: Duration) -> Bool {
        var entry = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
        let (seconds, attoseconds) = timeout.components
        let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        return ((try? retrying("poll") { poll(&entry, 1, milliseconds) }) ?? 0) > 0
    }

    /// The machine's hardware name, as `uname -m` prints it (`x86_64`, `aarch64`).
    public static var machine: String {
        var names = utsname()
        // uname cannot fail with a valid buffer.
        _ = uname(&names)
        return withUnsafeBytes(of: names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

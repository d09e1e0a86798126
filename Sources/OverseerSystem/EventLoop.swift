import COverseerShims
import SystemPackage

/// epoll over a set of fds, each registered with a token; overseerd sleeps in
/// `wait` until one is readable.
public struct EventLoop: ~Copyable {
    private let epoll: Int32

    public init() throws(SystemError) {
        let fd = overseer_epoll_create()
        guard fd >= 0 else { throw .last("epoll_create1") }
        epoll = fd
    }

    deinit { Posix.close(epoll) }

    /// Watches `fd` for readability, reporting `token`.
    public func watch(_ fd: FileDescriptor, token: UInt64) throws(SystemError) {
        try Posix.retrying("epoll_ctl(ADD)") { overseer_epoll_add(epoll, fd.rawValue, token) }
    }

    /// Watches `fd` for room to write (a socket's send buffer), reporting `token`.
    /// An fd is watched one way at a time: unwatch it before watching it the other way.
    public func watchWritable(_ fd: FileDescriptor, token: UInt64) throws(SystemError) {
        try Posix.retrying("epoll_ctl(ADD)") { overseer_epoll_add_writable(epoll, fd.rawValue, token) }
    }

    /// Stops watching `fd` (before it is closed).
    public func unwatch(_ fd: FileDescriptor) {
        _ = overseer_epoll_remove(epoll, fd.rawValue)
    }

    /// Blocks until at least one watched fd is ready; returns their tokens.
    public func wait() throws(SystemError) -> [UInt64] {
        var tokens = [UInt64](repeating: 0, count: 32)
        let count = try Posix.retrying("epoll_wait") {
            tokens.withUnsafeMutableBufferPointer { overseer_epoll_wait(epoll, $0.baseAddress, 32, -1) }
        }
        return Array(tokens.prefix(Int(count)))
    }
}

/// One timerfd on CLOCK_MONOTONIC, armed for the earliest of the supervisor's deadlines.
public struct MonotonicTimer: Sendable {
    public let fd: FileDescriptor

    public init() throws(SystemError) {
        let fd = overseer_timerfd_create()
        guard fd >= 0 else { throw .last("timerfd_create") }
        self.fd = FileDescriptor(rawValue: fd)
    }

    /// CLOCK_MONOTONIC now, in nanoseconds.
    public static var now: Int64 { overseer_monotonic_ns() }

    /// Fires at the absolute monotonic time `deadline` (ns); nil disarms.
    public func arm(at deadline: Int64?) throws(SystemError) {
        // 0 disarms a timerfd, so a deadline already past is moved to 1 ns: it fires at once.
        let value = deadline.map { max($0, 1) } ?? 0
        try Posix.retrying("timerfd_settime") { overseer_timerfd_arm(fd.rawValue, value) }
    }

    /// Clears the readable state after it fired.
    public func acknowledge() { Posix.drain(fd.rawValue) }
}

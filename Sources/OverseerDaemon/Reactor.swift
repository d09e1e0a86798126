import OverseerCore
import OverseerSystem
import SystemPackage

/// The event loop: one epoll set and one timerfd. Each watched fd and each
/// deadline has its handler; `runOnce` sleeps in the kernel until one is due
/// and runs the handlers. Owns no policy.
final class Reactor: EventScheduling {
    private let loop: EventLoop
    private let timer: MonotonicTimer
    private var nextID: UInt64 = 1
    private var watchers: [UInt64: () -> Void] = [:]
    private var deadlines: [UInt64: (at: Int64, handler: () -> Void)] = [:]
    private static let timerID: UInt64 = 0

    init() throws(SystemError) {
        loop = try EventLoop()
        timer = try MonotonicTimer()
        try loop.watch(timer.fd, token: Self.timerID)
    }

    func watch(_ fd: FileDescriptor, _ handler: @escaping () -> Void) throws(SystemError) -> WatchToken {
        try register(fd, writable: false, handler)
    }

    func watchWritable(_ fd: FileDescriptor, _ handler: @escaping () -> Void) throws(SystemError) -> WatchToken {
        try register(fd, writable: true, handler)
    }

    private func register(_ fd: FileDescriptor, writable: Bool, _ handler: @escaping () -> Void) throws(SystemError) -> WatchToken {
        let id = nextID
        nextID += 1
        if writable { try loop.watchWritable(fd, token: id) } else { try loop.watch(fd, token: id) }
        watchers[id] = handler
        return WatchToken(fd: fd, id: id)
    }

    func unwatch(_ token: WatchToken) {
        guard watchers.removeValue(forKey: token.id) != nil else { return }
        loop.unwatch(token.fd)
    }

    func schedule(after delay: Duration, _ handler: @escaping () -> Void) -> DeadlineToken {
        let id = nextID
        nextID += 1
        deadlines[id] = (MonotonicTimer.now + delay.totalNanoseconds, handler)
        rearm()
        return DeadlineToken(id: id)
    }

    func cancel(_ token: DeadlineToken?) {
        guard let token, deadlines.removeValue(forKey: token.id) != nil else { return }
        rearm()
    }

    /// Sleeps until something is ready, then runs its handlers.
    func runOnce() throws(SystemError) {
        for id in try loop.wait() {
            if id == Self.timerID {
                timer.acknowledge()
                fireDue()
            } else {
                // A handler run earlier in this round may have unwatched it.
                watchers[id]?()
            }
        }
    }

    private func fireDue() {
        let now = MonotonicTimer.now
        let due = deadlines.filter { $0.value.at <= now }.sorted { ($0.value.at, $0.key) < ($1.value.at, $1.key) }
        for (id, _) in due {
            // Cancelled by an earlier handler of this round: not run.
            guard let entry = deadlines.removeValue(forKey: id) else { continue }
            entry.handler()
        }
        rearm()
    }

    private func rearm() {
        // timerfd_settime on our own timerfd fails only for a bad fd or value: neither can happen here.
        try? timer.arm(at: deadlines.values.map(\.at).min())
    }
}

import Logging
import OverseerCore
import OverseerSystem
import SystemPackage

/// Accepts connections on a listening socket for the loop, up to `limit` open
/// at once. At the cap, or when accept fails (EMFILE and ENFILE leave the connection queued,
/// so epoll would wake the loop again at once), it stops watching the listener
/// for `backoff` instead of spinning, with one warning a second at most.
final class ConnectionAcceptor {
    /// How long the listener rests.
    static let backoff = Duration.milliseconds(250)

    private let loop: EventScheduling
    private let listener: FileDescriptor
    /// `control socket`, `metrics endpoint`: how warnings name it.
    private let label: String
    /// The event of its warnings (`control_refused`, `metrics_refused`) and errors.
    private let pausedEvent: DaemonEvent
    private let failedEvent: DaemonEvent
    private let logger: Logger
    private let limit: Int
    private var watch: WatchToken?
    private var backoffDeadline: DeadlineToken?
    private var pauseLogged = WarningThrottle()
    /// How many of its connections are open now.
    private let open: () -> Int
    /// Takes over an accepted connection (non-blocking, close-on-exec).
    private let accepted: (FileDescriptor) -> Void

    init(listener: FileDescriptor, label: String, events: (paused: DaemonEvent, failed: DaemonEvent), limit: Int,
         loop: EventScheduling, logger: Logger,
         open: @escaping () -> Int, accepted: @escaping (FileDescriptor) -> Void) throws(SystemError) {
        self.listener = listener
        self.label = label
        self.pausedEvent = events.paused
        self.failedEvent = events.failed
        self.limit = limit
        self.loop = loop
        self.logger = logger
        self.open = open
        self.accepted = accepted
        try start()
    }

    private func start() throws(SystemError) {
        watch = try loop.watch(listener) { [unowned self] in acceptAll() }
    }

    /// Stops watching the listener (before it is closed).
    func stop() {
        if let watch { loop.unwatch(watch) }
        watch = nil
        loop.cancel(backoffDeadline)
        backoffDeadline = nil
    }

    /// Stops taking connections for a moment (fd table full, or too many open).
    private func pause(_ why: String) {
        guard let watch else { return }
        loop.unwatch(watch)
        self.watch = nil
        if pauseLogged.admit("pause", now: MonotonicTimer.now).show {
            logger.log(.warning, pausedEvent, "\(label): \(why); not accepting for \(Self.backoff.shortDescription)")
        }
        backoffDeadline = loop.schedule(after: Self.backoff) { [unowned self] in
            backoffDeadline = nil
            do { try start() } catch { logger.log(.error, failedEvent, "\(label): \(error)") }
            acceptAll()
        }
    }

    private func acceptAll() {
        while watch != nil {
            let count = open()
            if count >= limit {
                pause("\(count) connections are open already")
                return
            }
            do {
                guard let fd = try StreamSocket.accept(listener) else { return }
                accepted(fd)
            } catch {
                pause("accept failed: \(error.reason)")
                return
            }
        }
    }
}

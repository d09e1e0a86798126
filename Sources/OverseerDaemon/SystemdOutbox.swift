import OverseerCore
import OverseerProtocol
import OverseerSystem

/// overseerd's messages to systemd, sent through libsystemd's sd_notify on a
/// thread of their own (a `BackgroundJob` per batch), so that a full notify
/// socket (systemd busy in a daemon-reload) never holds up the event loop.
/// Order is kept; what comes while a batch is out waits in a `NotifyQueue`.
final class SystemdOutbox {
    private let notifier: SystemdNotifier
    private let loop: any EventScheduling
    private var queue = NotifyQueue()
    private var inFlight: (job: BackgroundJob<Void>, watch: WatchToken)?

    init(notifier: SystemdNotifier, loop: any EventScheduling) {
        self.notifier = notifier
        self.loop = loop
    }

    /// Whether a service manager listens (NOTIFY_SOCKET was given).
    var isEnabled: Bool { notifier.isEnabled }

    func send(_ message: NotifyMessage) {
        enqueue(NotifyQueue.Item(message))
    }

    /// Sends `message` with `fd` attached (SCM_RIGHTS), as `FDSTORE=1` needs; `fd` must stay open.
    func send(_ message: NotifyMessage, passing fd: Int32) {
        enqueue(NotifyQueue.Item(message, fd: fd))
    }

    /// Before an exec or an exit: waits up to `timeout` for what is being sent,
    /// then sends what waits, from this thread.
    func drain(timeout: Duration) {
        if let (job, watch) = inFlight {
            loop.unwatch(watch)
            _ = Posix.waitReadable(job.fd, timeout: timeout)
            inFlight = nil
        }
        while let batch = queue.sent() {
            Self.deliver(batch, with: notifier)
        }
    }

    private func enqueue(_ item: NotifyQueue.Item) {
        guard notifier.isEnabled, let batch = queue.enqueue(item) else { return }
        start(batch)
    }

    private func start(_ batch: [NotifyQueue.Item]) {
        let notifier = notifier
        let job: BackgroundJob<Void>
        do {
            job = try BackgroundJob.start { Self.deliver(batch, with: notifier) }
        } catch {
            // No thread: sent from here, as sd_notify always was, rather than lost.
            Self.deliver(batch, with: notifier)
            if let next = queue.sent() { start(next) }
            return
        }
        do {
            let watch = try loop.watch(job.fd) { [unowned self] in finished(job) }
            inFlight = (job, watch)
        } catch {
            // Not watched: waited for here, bounded.
            _ = Posix.waitReadable(job.fd, timeout: .seconds(1))
            if let next = queue.sent() { start(next) }
        }
    }

    private func finished(_ job: BackgroundJob<Void>) {
        guard job.finish() != nil, let (current, watch) = inFlight, current === job else { return }
        loop.unwatch(watch)
        inFlight = nil
        if let next = queue.sent() { start(next) }
    }

    private static func deliver(_ batch: [NotifyQueue.Item], with notifier: SystemdNotifier) {
        for item in batch {
            if let fd = item.fd { notifier.send(item.message, passing: fd) } else { notifier.send(item.message) }
        }
    }
}

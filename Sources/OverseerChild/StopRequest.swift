import Glibc

/// A request to stop: a stop signal arrived (SIGTERM from overseerd when a
/// newer generation is ready or overseerd is stopping; SIGINT from a terminal).
///
/// On it, a server closes its listeners (`close()`, never `shutdown()`: the
/// sockets are shared with the next generation), finishes the requests it
/// has, sends ``OverseerChild/stopping()`` and exits.
public struct StopRequest: Sendable, Equatable, CustomStringConvertible {
    /// The signal that asked for the stop.
    public let signal: Int32

    /// Wraps `signal`.
    public init(signal: Int32) { self.signal = signal }

    /// `SIGTERM`, `SIGINT`, … or `signal N`.
    public var description: String {
        switch signal {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGQUIT: "SIGQUIT"
        case SIGHUP: "SIGHUP"
        case SIGUSR1: "SIGUSR1"
        case SIGUSR2: "SIGUSR2"
        default: "signal \(signal)"
        }
    }
}

extension OverseerChild {
    /// The signals that ask a program to stop unless told otherwise: SIGTERM and SIGINT.
    public static let defaultStopSignals: [Int32] = [SIGTERM, SIGINT]

    /// The stop requests as an async sequence: one element per stop signal
    /// received from now on, and first of all the earliest one received before,
    /// if any (a stop is a state, not an event one can miss).
    ///
    /// ```swift
    /// for await request in OverseerChild.stopRequests() {
    ///     listener.close()      // never shutdown()
    ///     break
    /// }
    /// ```
    ///
    /// The first call for a signal installs a handler for it that only writes
    /// the signal's number to a pipe (async-signal-safe); a thread of this
    /// library reads the pipe and delivers the requests. That thread unblocks
    /// the subscribed signals, and only those, for itself: delivery works
    /// whatever the other threads block, and a signal the program reads from a
    /// signalfd or `sigwait()` is left alone.
    /// Do not also handle these signals another way (`signal()`, a
    /// `DispatchSource`, ServiceLifecycle's `gracefulShutdownSignals`): the
    /// last one installed wins.
    ///
    /// Throws when the library cannot watch for signals at all (no fd or
    /// thread to spare): the program goes on, and can try again later.
    public static func stopRequests(signals: [Int32] = defaultStopSignals) throws(OverseerChildError) -> AsyncStream<StopRequest> {
        let relay = try SignalRelay.shared()
        return AsyncStream { continuation in
            let token = relay.subscribe(signals: signals) { continuation.yield($0) }
            continuation.onTermination = { _ in relay.unsubscribe(token) }
        }
    }

    /// Calls `handler` for each stop signal from now on, and at once for the
    /// earliest one received before, if any. It runs on the library's signal
    /// thread, not in the signal handler: it may take locks and allocate, but
    /// should return soon. Throws as ``stopRequests(signals:)`` does.
    public static func onStopRequest(signals: [Int32] = defaultStopSignals,
                                     _ handler: @escaping @Sendable (StopRequest) -> Void) throws(OverseerChildError) {
        _ = try SignalRelay.shared().subscribe(signals: signals, handler)
    }

    /// Waits for the first stop request (returns at once if one already came).
    /// Throws as ``stopRequests(signals:)`` does.
    public static func waitForStopRequest(signals: [Int32] = defaultStopSignals) async throws(OverseerChildError) -> StopRequest {
        for await request in try stopRequests(signals: signals) { return request }
        return StopRequest(signal: signals.first ?? SIGTERM)
    }

    /// Whether a stop signal has arrived since the library started watching for
    /// one (through ``stopRequests(signals:)``, ``onStopRequest(signals:_:)`` or
    /// ``waitForStopRequest(signals:)``).
    public static var isStopRequested: Bool { SignalRelay.existing?.firstRequest != nil }
}

/// The write end of the self-pipe, for the signal handler. Set once, before any
/// handler is installed, so the handler only reads it.
nonisolated(unsafe) private var relayWriteFD: Int32 = -1

private func relaySignal(_ signal: Int32) {
    let saved = errno
    var byte = UInt8(truncatingIfNeeded: signal)
    _ = write(relayWriteFD, &byte, 1)
    errno = saved
}

/// Turns signals into calls on an ordinary thread: a handler writes the signal
/// number to a pipe, a thread reads it and calls the subscribers.
final class SignalRelay: @unchecked Sendable {
    private static let creation = Lock()
    nonisolated(unsafe) private static var instance: SignalRelay?

    /// The relay, started on first use. A failure to start is thrown, not
    /// kept: a later call tries again (once an fd or a thread is free).
    static func shared() throws(OverseerChildError) -> SignalRelay {
        creation.lock()
        defer { creation.unlock() }
        if let instance { return instance }
        let relay = try SignalRelay()
        instance = relay
        return relay
    }

    /// The relay if it was started.
    static var existing: SignalRelay? {
        creation.withLock { instance }
    }

    private struct Subscriber {
        let signals: Set<Int32>
        let handler: @Sendable (StopRequest) -> Void
    }

    private let lock = Lock()
    private var subscribers: [Int: Subscriber] = [:]
    private var nextToken = 0
    private var installed: Set<Int32> = []
    private var received: [StopRequest] = []
    private let readFD: Int32
    /// The thread that reads the pipe: the subscribed signals are unblocked on it.
    private(set) var thread = pthread_t()

    private init() throws(OverseerChildError) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw OverseerChildError(.stopWatchFailed, "cannot watch for stop signals: pipe failed: \(errnoText(errno)) (raise the fd limit, ulimit -n)")
        }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        // A full pipe must not block the handler: the reader drains it soon enough.
        _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
        readFD = fds[0]
        // The thread starts with every signal blocked and unblocks exactly the
        // stop signals subscribed to: it must not take a signal that the program
        // blocks everywhere to read it from a signalfd or sigwait().
        var all = sigset_t()
        var previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_SETMASK, &all, &previous)
        let context = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(&thread, nil, { raw in
            Unmanaged<SignalRelay>.fromOpaque(raw!).takeRetainedValue().readLoop()
            return nil
        }, context)
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        guard status == 0 else {
            Unmanaged<SignalRelay>.fromOpaque(context).release()
            close(fds[0])
            close(fds[1])
            throw OverseerChildError(.stopWatchFailed, "cannot watch for stop signals: pthread_create failed: \(errnoText(status)) (the thread limit is reached)")
        }
        // Published only once the thread exists: the handler writes here.
        relayWriteFD = fds[1]
        pthread_detach(thread)
    }

    var firstRequest: StopRequest? { lock.withLock { received.first } }

    func subscribe(signals: [Int32], _ handler: @escaping @Sendable (StopRequest) -> Void) -> Int {
        let (token, replay, newSignals): (Int, StopRequest?, Bool) = lock.withLock {
            var newSignals = false
            for signal in signals where !installed.contains(signal) {
                var action = sigaction()
                action.__sigaction_handler.sa_handler = { relaySignal($0) }
                action.sa_flags = SA_RESTART
                sigemptyset(&action.sa_mask)
                sigaction(signal, &action, nil)
                installed.insert(signal)
                newSignals = true
            }
            nextToken += 1
            subscribers[nextToken] = Subscriber(signals: Set(signals), handler: handler)
            return (nextToken, received.first { signals.contains($0.signal) }, newSignals)
        }
        if newSignals {
            // Asks the relay thread to unblock them. Until it has, such a signal
            // is handled by any other thread that does not block it, or stays
            // pending for the process: it is not lost.
            var command = Self.unblockCommand
            _ = write(relayWriteFD, &command, 1)
        }
        if let replay { handler(replay) }
        return token
    }

    /// The relay thread's name (at most 15 bytes).
    static let threadName = "overseer-stop"

    /// Written to the pipe instead of a signal number: unblock the installed signals.
    private static let unblockCommand: UInt8 = 0

    func unsubscribe(_ token: Int) {
        lock.withLock { _ = subscribers.removeValue(forKey: token) }
    }

    private func readLoop() {
        // Named, so that `ps -L` and /proc/PID/task/*/comm show what it is.
        // (pthread_setname_np is a GNU extension Swift's Glibc module leaves out.)
        let comm = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        if comm >= 0 {
            _ = Self.threadName.withCString { write(comm, $0, strlen($0)) }
            close(comm)
        }
        var byte: UInt8 = 0
        while true {
            let count = read(readFD, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return }
            if byte == Self.unblockCommand {
                var mask = sigset_t()
                sigemptyset(&mask)
                lock.withLock { for signal in installed { sigaddset(&mask, signal) } }
                pthread_sigmask(SIG_UNBLOCK, &mask, nil)
                continue
            }
            let request = StopRequest(signal: Int32(byte))
            let handlers: [@Sendable (StopRequest) -> Void] = lock.withLock {
                received.append(request)
                return subscribers.values.filter { $0.signals.contains(request.signal) }.map(\.handler)
            }
            for handler in handlers { handler(request) }
        }
    }
}

/// A pthread mutex: this library links no Foundation and no Synchronization.
final class Lock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() {
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

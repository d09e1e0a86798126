#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

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
    /// the signals for itself, so delivery works whatever other threads block.
    /// Do not also handle these signals another way (`signal()`, a
    /// `DispatchSource`, ServiceLifecycle's `gracefulShutdownSignals`): the
    /// last one installed wins.
    public static func stopRequests(signals: [Int32] = defaultStopSignals) -> AsyncStream<StopRequest> {
        AsyncStream { continuation in
            let token = SignalRelay.shared.subscribe(signals: signals) { continuation.yield($0) }
            continuation.onTermination = { _ in SignalRelay.shared.unsubscribe(token) }
        }
    }

    /// Calls `handler` for each stop signal from now on, and at once for the
    /// earliest one received before, if any. It runs on the library's signal
    /// thread, not in the signal handler: it may take locks and allocate, but
    /// should return soon.
    public static func onStopRequest(signals: [Int32] = defaultStopSignals,
                                     _ handler: @escaping @Sendable (StopRequest) -> Void) {
        _ = SignalRelay.shared.subscribe(signals: signals, handler)
    }

    /// Waits for the first stop request (returns at once if one already came).
    public static func waitForStopRequest(signals: [Int32] = defaultStopSignals) async -> StopRequest {
        for await request in stopRequests(signals: signals) { return request }
        return StopRequest(signal: signals.first ?? SIGTERM)
    }

    /// Whether a stop signal has arrived since the library started watching for
    /// one (through ``stopRequests(signals:)``, ``onStopRequest(signals:_:)`` or
    /// ``waitForStopRequest(signals:)``).
    public static var isStopRequested: Bool { SignalRelay.shared.firstRequest != nil }
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
    static let shared = SignalRelay()

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

    private init() {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { fatalError("OverseerChild: pipe for the stop signals: \(errnoText(errno))") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        // A full pipe must not block the handler: the reader drains it soon enough.
        _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
        readFD = fds[0]
        relayWriteFD = fds[1]
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(&thread, nil, { raw in
            Unmanaged<SignalRelay>.fromOpaque(raw!).takeRetainedValue().readLoop()
            return nil
        }, context)
        guard status == 0 else { fatalError("OverseerChild: pthread_create for the stop signals: \(errnoText(status))") }
        pthread_detach(thread)
    }

    var firstRequest: StopRequest? { lock.withLock { received.first } }

    func subscribe(signals: [Int32], _ handler: @escaping @Sendable (StopRequest) -> Void) -> Int {
        let (token, replay): (Int, StopRequest?) = lock.withLock {
            for signal in signals where !installed.contains(signal) {
                var action = sigaction()
                action.__sigaction_handler.sa_handler = { relaySignal($0) }
                action.sa_flags = SA_RESTART
                sigemptyset(&action.sa_mask)
                sigaction(signal, &action, nil)
                installed.insert(signal)
            }
            nextToken += 1
            subscribers[nextToken] = Subscriber(signals: Set(signals), handler: handler)
            return (nextToken, received.first { signals.contains($0.signal) })
        }
        if let replay { handler(replay) }
        return token
    }

    func unsubscribe(_ token: Int) {
        lock.withLock { _ = subscribers.removeValue(forKey: token) }
    }

    private func readLoop() {
        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2] { sigaddset(&mask, signal) }
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
        var byte: UInt8 = 0
        while true {
            let count = read(readFD, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return }
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

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

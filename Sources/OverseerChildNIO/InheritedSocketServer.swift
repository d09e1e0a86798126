import NIOCore
import NIOPosix
import OverseerChild
import ServiceLifecycle
import Synchronization

/// A SwiftNIO server on an inherited listener, as a swift-service-lifecycle
/// `Service`: it starts serving and sends `READY=1`; on graceful shutdown (the
/// stop signal, through `ServiceGroup`'s `gracefulShutdownSignals`) it sends
/// `STOPPING=1`, stops accepting and closes the listener once the connections
/// it already accepted are set up (`close()`, never `shutdown()`, so the
/// next generation keeps accepting on it), asks every open connection to
/// finish (`ChannelShouldQuiesceEvent`), waits for them up to `drainTimeout`,
/// closes the rest and returns.
///
/// ```swift
/// OverseerChild.answerUpgradeCheckIfAsked()
/// let socket = try OverseerChild.current.socket(named: "http", orBind: "127.0.0.1:8080")
/// let server = InheritedSocketServer(socket: socket) { channel in
///     channel.eventLoop.makeCompletedFuture {
///         try channel.pipeline.syncOperations.configureHTTPServerPipeline()
///         try channel.pipeline.syncOperations.addHandler(MyHTTPHandler())
///     }
/// }
/// let group = ServiceGroup(configuration: .init(
///     services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// try await group.run()
/// ```
///
/// Connections that speak HTTP/1 through NIO's `configureHTTPServerPipeline()`
/// drain by themselves; add a ``DeferredQuiesceHandler`` before
/// `HTTPServerPipelineHandler` so that idle keep-alive connections are closed
/// with a `Connection: close` answer rather than under a client's feet. Other
/// protocols should handle `ChannelShouldQuiesceEvent`, or they are closed at
/// `drainTimeout`.
public final class InheritedSocketServer: Service, Sendable {
    /// The socket served on.
    public let socket: InheritedSocket
    private let group: any EventLoopGroup
    private let backlog: ListenBacklog
    private let child: OverseerChild?
    private let notifyReady: Bool
    private let drainTimeout: Duration
    private let onGracefulShutdown: @Sendable () -> Void
    private let childChannelInitializer: @Sendable (any Channel) -> EventLoopFuture<Void>

    /// A server on `socket`.
    ///
    /// - Parameters:
    ///   - socket: a listening TCP or unix stream socket, inherited or bound by the fallback.
    ///   - group: the event loops for the listener and the connections.
    ///   - backlog: the backlog the socket keeps after NIO's `listen()`; see ``ListenBacklog``.
    ///   - child: where `READY=1` and `STOPPING=1` go; nil sends nothing.
    ///   - notifyReady: whether to send `READY=1` once the listener is registered.
    ///   - drainTimeout: how long open connections may take to finish after the stop;
    ///     keep it below overseerd's `--stop-timeout` (30s), after which it sends SIGKILL.
    ///   - onGracefulShutdown: called once when the stop is requested, after the
    ///     listener was closed and the connections were asked to finish (to let
    ///     long-running requests know).
    ///   - childChannelInitializer: sets up each accepted connection's pipeline.
    public init(
        socket: InheritedSocket,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        backlog: ListenBacklog = .keep,
        child: OverseerChild? = .current,
        notifyReady: Bool = true,
        drainTimeout: Duration = .seconds(25),
        onGracefulShutdown: @escaping @Sendable () -> Void = {},
        childChannelInitializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) {
        self.socket = socket
        self.group = group
        self.backlog = backlog
        self.child = child
        self.notifyReady = notifyReady
        self.drainTimeout = drainTimeout
        self.onGracefulShutdown = onGracefulShutdown
        self.childChannelInitializer = childChannelInitializer
    }

    /// Serves until graceful shutdown, then drains the connections (at most
    /// `drainTimeout`, then closes the rest) and returns. On cancellation it
    /// closes the listener and every connection at once and returns.
    ///
    /// - Throws: ``InheritedListenerError`` when the socket cannot be served on,
    ///   NIO's error when the channel cannot be set up, and
    ///   ``InheritedListenerError`` when the listener closed without being asked to.
    public func run() async throws {
        let tracker = ConnectionTracker()
        let initializer = childChannelInitializer
        let listener = try await ServerBootstrap(group: group)
            .serverChannelInitializer { listener in
                listener.eventLoop.makeCompletedFuture {
                    try listener.pipeline.syncOperations.addHandler(AcceptedConnectionCounter(tracker))
                }
            }
            .childChannelInitializer { channel in
                initializer(channel).map { tracker.initialized(channel) }
            }
            .withInheritedSocket(socket, backlog: backlog)
            .get()
        if notifyReady { child?.ready() }

        let stopRequested = StopFlag()
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                try? await listener.closeFuture.get()
            } onCancel: {
                stopRequested.set()
                listener.close(promise: nil)
                tracker.closeAll()
            }
        } onGracefulShutdown: { [child, group, drainTimeout, onGracefulShutdown] in
            stopRequested.set()
            child?.stopping()
            Self.stopAccepting(listener, group: group, tracker: tracker, bound: drainTimeout)
            // Before the caller's callback, so that a response it releases goes
            // out after the connection learned of the drain (same event loop, in order).
            tracker.startDraining()
            onGracefulShutdown()
        }

        tracker.startDraining()
        let timeout = drainTimeout
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await tracker.waitUntilEmpty() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            // Whatever is still open now is past the drain: the timeout fired, or
            // this task was cancelled (then the sleep ended at once). Closed here,
            // inside the group: the group waits for both children before it returns.
            tracker.closeAll()
            group.cancelAll()
        }
        if !stopRequested.isSet {
            throw InheritedListenerError(description: "the listener on \(socket.description) closed without a stop request")
        }
    }
}

extension InheritedSocketServer {
    /// Stops accepting, then closes the listener, without losing a connection
    /// NIO has already accepted.
    ///
    /// NIO's accept handler sets a new connection up on its own event loop and
    /// then, back on the listener's loop, closes it if the listener is no
    /// longer active. Closing the listener at once would reset connections
    /// accepted a moment before (measured: a few read errors per 100 restarts
    /// under wrk, each a connection reset right after its request arrived).
    /// So: no more `accept()` (autoRead off; new connections wait in the shared
    /// queue for the next generation), wait until every accepted connection is
    /// set up, let each event loop and then the listener's loop run what was
    /// queued before (the hand-back included), and only then close: `close()`
    /// on this process's fd, never `shutdown()`, so the socket lives on in
    /// overseerd and the next generation.
    static func stopAccepting(_ listener: any Channel, group: any EventLoopGroup,
                              tracker: ConnectionTracker, bound: Duration) {
        let loop = listener.eventLoop
        let setUp = loop.makePromise(of: Void.self)
        let once = StopFlag()
        let setUpDone: @Sendable () -> Void = { if once.setFirst() { setUp.succeed() } }
        // A set-up that never ends must not keep the listener open for ever.
        let deadline = loop.scheduleTask(in: TimeAmount(bound)) { setUpDone() }
        listener.setOption(ChannelOptions.autoRead, value: false)
            .whenComplete { _ in tracker.whenAcceptedAreSetUp(setUpDone) }
        setUp.futureResult
            .flatMap { EventLoopFuture.andAllComplete(group.makeIterator().map { $0.submit {} }, on: loop) }
            .flatMap { loop.submit {} }
            .whenComplete { _ in
                deadline.cancel()
                listener.close(promise: nil)
            }
    }
}

/// Set once, read from anywhere.
private final class StopFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    /// Sets it; true for the one caller that set it first.
    func setFirst() -> Bool { value.withLock { state in defer { state = true }; return !state } }
    var isSet: Bool { value.withLock { $0 } }
}

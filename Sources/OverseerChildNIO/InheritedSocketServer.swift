import NIOCore
import NIOPosix
import OverseerChild
import ServiceLifecycle
import Synchronization

/// A SwiftNIO server on an inherited listener, as a swift-service-lifecycle
/// `Service`: it starts serving and sends `READY=1`; on graceful shutdown (the
/// stop signal, through `ServiceGroup`'s `gracefulShutdownSignals`) it sends
/// `STOPPING=1`, closes the listener (`close()`, never `shutdown()`, so the
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
            .childChannelInitializer { channel in
                tracker.add(channel)
                return initializer(channel)
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
        } onGracefulShutdown: { [child, onGracefulShutdown] in
            stopRequested.set()
            child?.stopping()
            // close(2) on this process's fd: the socket lives on in overseerd and
            // the next generation. Never shutdown(2): that would stop it for all.
            listener.close(promise: nil)
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

/// Set once, read from anywhere.
private final class StopFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

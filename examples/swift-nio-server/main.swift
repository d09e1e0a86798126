// An HTTP server for overseerd on SwiftNIO, through OverseerChildNIO.
//
//   overseerd -l http=0.0.0.0:8080 --ready notify -- .build/debug/OverseerExampleNIOServer
//   kill -USR2 $(pidof overseerd)      # a new generation takes over, this one drains
//
// Run alone, it binds 127.0.0.1:8080 itself (or the address given as its argument).
// It answers every request with its pid and generation. It sends READY=1 once it
// accepts; on SIGTERM it closes its listener (never shutdown()), answers the
// requests in flight with `Connection: close`, closes idle keep-alive connections
// and exits. `GET /hold` is answered only once the stop was requested (or after
// 30 s), to show a request in flight surviving the restart.
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOHTTP1
import OverseerChild
import OverseerChildNIO
import ServiceLifecycle
import Synchronization

OverseerChild.answerUpgradeCheckIfAsked()
let child = OverseerChild.current
let generation = child.generation.map(String.init) ?? "0"
let fallback = CommandLine.arguments.dropFirst().first ?? "127.0.0.1:8080"

/// Requests waiting for the stop, answered when it comes.
final class StopLatch: Sendable {
    private let state = Mutex<(stopped: Bool, waiters: [EventLoopPromise<Void>])>((false, []))

    func wait(_ promise: EventLoopPromise<Void>) {
        let stopped = state.withLock { state in
            if !state.stopped { state.waiters.append(promise) }
            return state.stopped
        }
        if stopped { promise.succeed() }
    }

    func release() {
        let waiters = state.withLock { state in
            state.stopped = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.succeed() }
    }
}

let stopLatch = StopLatch()

/// One line, written at once (stdout may be a pipe: no buffering to lose).
func say(_ fd: Int32, _ line: String) {
    var bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
}

final class HelloHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var request: HTTPRequestHead?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            if head.uri.hasPrefix("/hold") {
                let promise = context.eventLoop.makePromise(of: Void.self)
                stopLatch.wait(promise)
                context.eventLoop.scheduleTask(in: .seconds(30)) { promise.succeed() }
                promise.futureResult.assumeIsolated().whenSuccess { _ in
                    self.respond(to: head, context: context)
                }
            } else {
                respond(to: head, context: context)
            }
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let body = "hello from pid \(getpid()) generation \(generation)\n"
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "X-Pid", value: String(getpid()))
        headers.add(name: "X-Generation", value: generation)
        // NIO's HTTPServerPipelineHandler turns this into `Connection: close`
        // once the server is draining.
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let response = HTTPResponseHead(version: head.version, status: .ok, headers: headers)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        let done = context.writeAndFlushAndReturnFuture(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

extension ChannelHandlerContext {
    fileprivate func writeAndFlushAndReturnFuture(_ data: NIOAny) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        writeAndFlush(data, promise: promise)
        return promise.futureResult
    }
}

var logger = Logger(label: "swift-nio-server")
logger.logLevel = .notice
do {
    // Under overseerd: the one socket it passed, whatever its name, or the one named http.
    let socket = child.sockets.count == 1 ? child.sockets[0] : try child.socket(named: "http", orBind: fallback)
    let server = InheritedSocketServer(
        socket: socket,
        drainTimeout: .seconds(20),
        onGracefulShutdown: { stopLatch.release() }
    ) { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            // Idle keep-alive connections get their next request answered with
            // `Connection: close` during the drain, instead of a close under their feet.
            let pipelining = try channel.pipeline.syncOperations.handler(type: HTTPServerPipelineHandler.self)
            try channel.pipeline.syncOperations.addHandler(DeferredQuiesceHandler(), position: .before(pipelining))
            try channel.pipeline.syncOperations.addHandler(HelloHandler())
        }
    }
    say(STDOUT_FILENO, "swift-nio-server: generation \(generation) serving as pid \(getpid()) on \(socket.localAddress.map(\.description) ?? "?")")
    let group = ServiceGroup(configuration: .init(
        services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
    say(STDOUT_FILENO, "swift-nio-server: pid \(getpid()) drained and stopped")
} catch {
    say(STDERR_FILENO, "swift-nio-server: \(error)")
    exit(1)
}


import NIOCore

/// Holds back `ChannelShouldQuiesceEvent` from a connection that is idle
/// between requests until the first message of its next request has passed
/// (or `grace` has passed), so that a keep-alive client is not closed on just
/// as it sends a request.
///
/// Why: NIO's `HTTPServerPipelineHandler` closes an idle connection at once on
/// quiesce, without telling the client, who then sends its next request into a
/// closed connection (a read error for it; wrk counted one per connection per
/// restart). Held back until that request's head has passed, the event makes the
/// pipeline handler answer the request with `Connection: close` and close
/// afterwards, which every HTTP/1.1 client understands. A connection with a
/// request in flight (a message came in, nothing was written since) gets the
/// event at once.
///
/// It passes every message through unchanged. Put it right before the handler
/// that reacts to the event; for HTTP/1 that is `HTTPServerPipelineHandler`:
///
/// ```swift
/// try channel.pipeline.syncOperations.configureHTTPServerPipeline()
/// let pipelining = try channel.pipeline.syncOperations.handler(type: HTTPServerPipelineHandler.self)
/// try channel.pipeline.syncOperations.addHandler(DeferredQuiesceHandler(), position: .before(pipelining))
/// ```
public final class DeferredQuiesceHandler: ChannelDuplexHandler, RemovableChannelHandler {
    /// Passed through unchanged.
    public typealias InboundIn = Any
    /// Passed through unchanged.
    public typealias InboundOut = Any
    /// Passed through unchanged.
    public typealias OutboundIn = Any
    /// Passed through unchanged.
    public typealias OutboundOut = Any

    private let grace: TimeAmount
    private var requestInFlight = false
    private var held = false
    private var timer: Scheduled<Void>?

    /// Holds the event back for at most `grace` on an idle connection; after
    /// that the connection is asked to close even if no request came.
    public init(grace: TimeAmount = .seconds(1)) { self.grace = grace }

    /// Passes the message on, then releases a held-back quiesce event.
    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        requestInFlight = true
        context.fireChannelRead(data)
        if held { release(context) }
    }

    /// Passes the write on; the connection has answered what it read.
    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        requestInFlight = false
        context.write(data, promise: promise)
    }

    /// Holds back `ChannelShouldQuiesceEvent` while idle; passes everything else on.
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent, !held, !requestInFlight else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        held = true
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: grace) { self.release(context) }
    }

    /// Cancels the grace timer.
    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    private func release(_ context: ChannelHandlerContext) {
        guard held else { return }
        held = false
        timer?.cancel()
        timer = nil
        context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}

import NIOCore
import Synchronization

/// The connections a server accepted and that are still open, so that a
/// graceful shutdown can ask each to finish and wait until they have.
final class ConnectionTracker: Sendable {
    private struct State {
        // Keyed by a counter, not ObjectIdentifier: a closed channel's address can be
        // reused by a new one before the old one's close callback has run.
        var channels: [UInt64: any Channel] = [:]
        var nextID: UInt64 = 0
        var draining = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// The number of open connections.
    var count: Int { state.withLock { $0.channels.count } }

    /// Tracks `channel` until it closes; asks it to finish at once when draining has begun.
    func add(_ channel: any Channel) {
        let (id, draining) = state.withLock { state in
            state.nextID += 1
            state.channels[state.nextID] = channel
            return (state.nextID, state.draining)
        }
        channel.closeFuture.whenComplete { _ in self.remove(id) }
        if draining { Self.quiesce(channel) }
    }

    /// Asks every connection to finish what it is doing and close: NIO's
    /// `ChannelShouldQuiesceEvent`, which `configureHTTPServerPipeline()`
    /// handles (idle connections close at once; one with a request in flight
    /// answers it with `Connection: close`, then closes).
    func startDraining() {
        let channels = state.withLock { state -> [any Channel] in
            // Once only: NIO's HTTP handler asserts on a second quiesce event.
            guard !state.draining else { return [] }
            state.draining = true
            return Array(state.channels.values)
        }
        for channel in channels { Self.quiesce(channel) }
    }

    /// Closes every connection still open.
    func closeAll() {
        let channels = state.withLock { Array($0.channels.values) }
        for channel in channels { channel.close(promise: nil) }
    }

    /// Returns once no connection is open.
    func waitUntilEmpty() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state in
                if state.channels.isEmpty { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    private func remove(_ id: UInt64) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.channels[id] = nil
            guard state.channels.isEmpty else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private static func quiesce(_ channel: any Channel) {
        channel.eventLoop.execute {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }
}

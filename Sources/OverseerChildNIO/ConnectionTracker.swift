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
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiterID: UInt64 = 0
        var cancelledWaiters: Set<UInt64> = []
    }

    private let state = Mutex(State())

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

    /// Returns once no connection is open, or at once when the task is cancelled.
    func waitUntilEmpty() async {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.channels.isEmpty || state.cancelledWaiters.remove(id) != nil { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            // Runs before or after the continuation was stored: either resume it,
            // or leave a mark so that it is not stored at all.
            let waiter = state.withLock { state in
                if let waiter = state.waiters.removeValue(forKey: id) { return Optional(waiter) }
                state.cancelledWaiters.insert(id)
                return nil
            }
            waiter?.resume()
        }
        state.withLock { _ = $0.cancelledWaiters.remove(id) }
    }

    private func remove(_ id: UInt64) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.channels[id] = nil
            guard state.channels.isEmpty else { return [] }
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    private static func quiesce(_ channel: any Channel) {
        channel.eventLoop.execute {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }
}

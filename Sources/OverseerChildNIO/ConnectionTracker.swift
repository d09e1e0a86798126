import NIOCore
import Synchronization

/// The connections a server accepted and that are still open, so that a
/// graceful shutdown can ask each to finish and wait until they have.
///
/// A connection counts from the moment the listener accepted it
/// (``accepted(_:)``, on the listener's event loop), not from its pipeline's
/// set-up, which NIO does later on the connection's own event loop: the server
/// can then wait until every accepted connection is set up before it closes
/// the listener (``whenAcceptedAreSetUp(_:)``), and the drain cannot end while
/// one is still on its way to its event loop.
final class ConnectionTracker: Sendable {
    private struct Entry {
        let channel: any Channel
        /// Its pipeline is set up: a quiesce event reaches the handlers.
        var initialized = false
    }

    private struct State {
        // Keyed by a counter, not ObjectIdentifier: a closed channel's address can be
        // reused by a new one before the old one's close callback has run.
        var entries: [UInt64: Entry] = [:]
        /// The id of each tracked channel. Safe to key by identity: the entry
        /// holds the channel, so its address is not reused while it is here.
        var ids: [ObjectIdentifier: UInt64] = [:]
        var nextID: UInt64 = 0
        var draining = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiterID: UInt64 = 0
        var cancelledWaiters: Set<UInt64> = []
        var setUpWatchers: [@Sendable () -> Void] = []

        /// The watchers to call now that no accepted connection awaits its set-up.
        mutating func takeSetUpWatchersIfDue() -> [@Sendable () -> Void] {
            guard !setUpWatchers.isEmpty, !entries.values.contains(where: { !$0.initialized }) else { return [] }
            defer { setUpWatchers = [] }
            return setUpWatchers
        }
    }

    private let state = Mutex(State())

    /// Tracks `channel`, just accepted, until it closes.
    func accepted(_ channel: any Channel) {
        let id = state.withLock { state in
            state.nextID += 1
            state.entries[state.nextID] = Entry(channel: channel)
            state.ids[ObjectIdentifier(channel)] = state.nextID
            return state.nextID
        }
        channel.closeFuture.whenComplete { _ in self.remove(id) }
    }

    /// `channel`'s pipeline is set up; asks it to finish at once when draining has begun.
    func initialized(_ channel: any Channel) {
        let (draining, watchers) = state.withLock { state in
            if let id = state.ids[ObjectIdentifier(channel)] {
                state.entries[id]?.initialized = true
            }
            return (state.draining, state.takeSetUpWatchersIfDue())
        }
        if draining { Self.quiesce(channel) }
        for watcher in watchers { watcher() }
    }

    /// Calls `watcher` once every connection accepted so far has been set up
    /// or has closed (at once when none is pending).
    func whenAcceptedAreSetUp(_ watcher: @escaping @Sendable () -> Void) {
        let due = state.withLock { state in
            state.setUpWatchers.append(watcher)
            return state.takeSetUpWatchersIfDue()
        }
        for watcher in due { watcher() }
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
            // The others get it once set up (initialized(_:)).
            return state.entries.values.filter(\.initialized).map(\.channel)
        }
        for channel in channels { Self.quiesce(channel) }
    }

    /// Closes every connection still open.
    func closeAll() {
        let channels = state.withLock { $0.entries.values.map(\.channel) }
        for channel in channels { channel.close(promise: nil) }
    }

    /// Returns once no connection is open, or at once when the task is cancelled.
    /// Call it after the listener's close has completed: then no connection is
    /// still to be counted.
    func waitUntilEmpty() async {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.entries.isEmpty || state.cancelledWaiters.remove(id) != nil { return true }
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
        let (waiters, watchers) = state.withLock { state -> ([CheckedContinuation<Void, Never>], [@Sendable () -> Void]) in
            if let entry = state.entries.removeValue(forKey: id) {
                state.ids[ObjectIdentifier(entry.channel)] = nil
            }
            let watchers = state.takeSetUpWatchersIfDue()
            guard state.entries.isEmpty else { return ([], watchers) }
            defer { state.waiters = [:] }
            return (Array(state.waiters.values), watchers)
        }
        for waiter in waiters { waiter.resume() }
        for watcher in watchers { watcher() }
    }

    private static func quiesce(_ channel: any Channel) {
        channel.eventLoop.execute {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }
}

/// On the listener's pipeline, before NIO's accept handler: tells the tracker
/// of each accepted connection in the same event-loop turn as the accept.
final class AcceptedConnectionCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let tracker: ConnectionTracker

    init(_ tracker: ConnectionTracker) { self.tracker = tracker }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        tracker.accepted(unwrapInboundIn(data))
        context.fireChannelRead(data)
    }
}

/// The counts and durations of restarts, readiness and child exits, read off
/// `Supervision`'s events and the actions it returned for them: no syscall,
/// the caller passes the monotonic time (ns) at which the event was handled.
///
/// - A restart's duration runs from the request to the exit of the generation
///   it replaced (for a failed one: to the failure). A restart asked for while
///   another runs is queued; it is timed from the first request queued.
/// - A generation's readiness time runs from its spawn to its `READY=1` (or
///   to the end of `--ready delay:`).
public struct RestartMetrics: Equatable, Sendable {
    /// Restarts that ended with the new generation serving.
    public private(set) var succeeded: UInt64 = 0
    /// Restarts whose new generation did not become ready.
    public private(set) var failed: UInt64 = 0
    public private(set) var restartDurations = Histogram()
    public private(set) var readyDurations = Histogram()
    /// Child exits by how: `status` (it exited) or `signal` (it was killed).
    public private(set) var exitedWithStatus: UInt64 = 0
    public private(set) var killedBySignal: UInt64 = 0
    /// How long the last restart took, in seconds; nil while its old generation is still stopping.
    public private(set) var lastRestartDuration: Double?
    /// Spawn to ready, in seconds, of each live generation that became ready.
    public private(set) var readiness: [Int: Double] = [:]

    private var spawnedAt: [Int: Int64] = [:]
    /// Restarts under way, by the generation they started: when its spawn was asked for.
    private var restartStartedAt: [Int: Int64] = [:]
    /// Generations being stopped by a restart that succeeded, with that restart's start.
    private var replacedAt: [Int: Int64] = [:]
    /// When the restart now queued was first asked for.
    private var queuedSince: Int64?

    public init() {}

    /// Reads what `event` and the `actions` it produced say; `restartQueued` is
    /// the machine's `restartQueued` after the event.
    public mutating func observe(_ event: Supervision.Event, actions: [Supervision.Action], restartQueued: Bool, now: Int64) {
        let requestedAt = queuedSince ?? now
        queuedSince = restartQueued ? requestedAt : nil
        for action in actions {
            switch action {
            case let .spawnChild(generation):
                spawnedAt[generation] = now
                if generation > 1 { restartStartedAt[generation] = requestedAt }
            case let .report(.ready(generation, restartSucceeded)):
                if restartSucceeded != false, let spawned = spawnedAt[generation], readiness[generation] == nil {
                    let seconds = Self.seconds(now - spawned)
                    readiness[generation] = seconds
                    readyDurations.observe(seconds)
                }
                switch restartSucceeded {
                case true?:
                    succeeded += 1
                    let start = restartStartedAt.removeValue(forKey: generation) ?? spawnedAt[generation] ?? now
                    // The generation this restart stops; none when it had exited already.
                    let replaced = actions.compactMap { action -> Int? in
                        if case let .startTimer(.stopTimeout(old), _) = action, old != generation { return old }
                        return nil
                    }
                    if let old = replaced.first {
                        replacedAt[old] = start
                        lastRestartDuration = nil
                    } else {
                        finishRestart(since: start, now: now)
                    }
                case false?:
                    failed += 1
                    // The candidate that failed is the newest restart under way.
                    if let candidate = restartStartedAt.keys.max(), let start = restartStartedAt.removeValue(forKey: candidate) {
                        finishRestart(since: start, now: now)
                    }
                case nil:
                    break
                }
            default:
                break
            }
        }
        // After the actions: a candidate's exit ends its restart as failed in the same round.
        if case let .childExited(generation, exit) = event {
            if case .exited = exit { exitedWithStatus += 1 } else { killedBySignal += 1 }
            if let start = replacedAt.removeValue(forKey: generation) { finishRestart(since: start, now: now) }
            forget(generation)
        }
        if case let .childSpawnFailed(generation, _, _, _) = event { forget(generation) }
    }

    /// Nothing is kept for a generation that is gone: a daemon that runs for years stays small.
    private mutating func forget(_ generation: Int) {
        spawnedAt[generation] = nil
        readiness[generation] = nil
        restartStartedAt[generation] = nil
    }

    /// How many generations something is kept for (for tests: those alive, at most).
    var generationsKept: Int { Set(spawnedAt.keys).union(readiness.keys).union(restartStartedAt.keys).union(replacedAt.keys).count }

    private mutating func finishRestart(since start: Int64, now: Int64) {
        let seconds = Self.seconds(now - start)
        restartDurations.observe(seconds)
        lastRestartDuration = seconds
    }

    static func seconds(_ nanoseconds: Int64) -> Double { Double(max(nanoseconds, 0)) / 1e9 }
}

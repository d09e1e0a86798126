/// Which of the STATUS= texts the generations send are logged and passed on to
/// systemd: a change at most once per `interval` per generation. The changes in
/// between are counted and not logged, except the last, which is said when the
/// interval is over, so the log and systemd always end on what the child last
/// sent. A child that sends STATUS= in a loop costs a line a second.
public struct StatusRelay: Sendable {
    public enum Decision: Equatable, Sendable {
        /// Log `status` and pass it on; `skipped` changes before it were not.
        case show(String, skipped: Int)
        /// Held until the interval is over; ask for `flush` after `flushAfter`
        /// (nil: a flush is already asked for).
        case hold(flushAfter: Duration?)
        /// Nothing new.
        case unchanged
    }

    private struct Generation: Sendable {
        var shownAt: Int64
        var shown: String
        var held: String?
        var skipped = 0
    }

    public let interval: Duration
    private var generations: [Int: Generation] = [:]

    public init(interval: Duration = .seconds(1)) { self.interval = interval }

    /// `generation` sent `status` at `now` (monotonic ns).
    public mutating func received(_ status: String, generation: Int, now: Int64) -> Decision {
        guard var entry = generations[generation] else {
            generations[generation] = Generation(shownAt: now, shown: status)
            return .show(status, skipped: 0)
        }
        if status == (entry.held ?? entry.shown) { return .unchanged }
        if now - entry.shownAt >= interval.totalNanoseconds {
            // A held one is superseded before its flush: counted, never shown.
            let skipped = entry.skipped + (entry.held == nil ? 0 : 1)
            generations[generation] = Generation(shownAt: now, shown: status)
            return .show(status, skipped: skipped)
        }
        let flushAfter: Duration?
        if entry.held == nil {
            flushAfter = .nanoseconds(entry.shownAt + interval.totalNanoseconds - now)
        } else {
            entry.skipped += 1
            flushAfter = nil
        }
        entry.held = status
        generations[generation] = entry
        return .hold(flushAfter: flushAfter)
    }

    /// The flush asked for by `.hold` is due.
    public mutating func flush(generation: Int, now: Int64) -> Decision {
        guard let entry = generations[generation], let held = entry.held else { return .unchanged }
        generations[generation] = Generation(shownAt: now, shown: held)
        return .show(held, skipped: entry.skipped)
    }

    /// `generation` is gone.
    public mutating func forget(generation: Int) {
        generations[generation] = nil
    }
}

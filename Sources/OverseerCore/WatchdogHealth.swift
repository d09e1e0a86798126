/// Whether overseerd pings systemd's watchdog now (WATCHDOG=1).
///
/// By default overseerd pings while a child lives; with `--watchdog relay` only
/// while the serving child itself pinged within the interval, so that systemd
/// sees a child that hangs.
public enum WatchdogHealth {
    /// - Parameters:
    ///   - relay: `--watchdog relay`.
    ///   - now: CLOCK_MONOTONIC in ns.
    ///   - servingLastPing: when the serving child last sent WATCHDOG=1 (ns), if it ever did.
    ///   - childrenAlive: any generation is running.
    public static func isHealthy(relay: Bool, now: Int64, interval: Duration, servingLastPing: Int64?, childrenAlive: Bool) -> Bool {
        guard relay else { return childrenAlive }
        guard let servingLastPing else { return false }
        return servingLastPing >= now - interval.totalNanoseconds
    }

    /// With `--workers`, what the relay goes by: the oldest last ping of the
    /// serving generation's ready workers, nil if one never pinged, so that
    /// systemd sees any worker that hangs, as it sees one child that hangs.
    public static func leastRecentPing(_ pings: [Int64?]) -> Int64? {
        var oldest: Int64?
        for ping in pings {
            guard let ping else { return nil }
            oldest = min(oldest ?? ping, ping)
        }
        return oldest
    }

    /// With `--probation-watchdog LIMIT`: whether a generation that pinged has
    /// stopped for longer than the limit. One that never pinged is not watched.
    public static func stoppedPinging(lastPing: Int64?, now: Int64, limit: Duration) -> Bool {
        guard let lastPing else { return false }
        return now - lastPing > limit.totalNanoseconds
    }
}

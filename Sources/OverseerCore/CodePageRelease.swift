/// When overseerd drops its code pages from its resident set (`CodePages` in
/// OverseerSystem): once `quiet` has passed after some work (a start, a
/// restart, a poll, a scrape), and only when pages came back since the last
/// time (counted as minor faults), so that a daemon at rest is never woken
/// for it and a watchdog ping does not cost a release each time.
public struct CodePageRelease: Sendable {
    public let quiet: Duration
    /// Fewer new minor faults than this since the last release: nothing worth dropping.
    public let minimumFaults: Int
    /// The quiet timer runs.
    public private(set) var isArmed = false
    private var faultsAtRelease: Int?

    public init(quiet: Duration = .seconds(5), minimumFaults: Int = 16) {
        self.quiet = quiet
        self.minimumFaults = minimumFaults
    }

    /// The loop did some work (other than this timer's): whether to start the quiet timer now.
    public mutating func worked() -> Bool {
        guard !isArmed else { return false }
        isArmed = true
        return true
    }

    /// The quiet timer fired; `faults` is the process's minor-fault count so far. Whether to release now.
    public mutating func quietEnded(faults: Int) -> Bool {
        isArmed = false
        if let last = faultsAtRelease, faults - last < minimumFaults { return false }
        return true
    }

    /// The pages were dropped; `faults` is the minor-fault count right after.
    public mutating func released(faults: Int) {
        faultsAtRelease = faults
    }
}

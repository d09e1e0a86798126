/// What overseerd has under way, as far as a re-exec is concerned. One
/// predicate, asked when a re-exec is requested and again just before the
/// exec: the new image knows only the serving child, so anything else running
/// (a restart, a drain, a helper, an upgrade step, processes a generation
/// left) would be lost to it.
public struct DaemonActivity: Equatable, Sendable {
    /// One generation serving, nothing starting, stopping or queued (`Supervision.isSettled`).
    public var supervisionSettled: Bool
    /// Helpers running (overseerd-fetch, a start check, a pre-upgrade command), not counting the re-exec's own check.
    public var helpersRunning: Int
    /// Work on the background thread (copying, hashing, installing a candidate).
    public var backgroundJobs: Int
    /// Processes an exited generation left, still in their grace period.
    public var leftoversWaiting: Bool
    /// The upgrade cycle is idle with nothing staged.
    public var upgradeIdle: Bool

    public init(supervisionSettled: Bool, helpersRunning: Int, backgroundJobs: Int, leftoversWaiting: Bool, upgradeIdle: Bool) {
        self.supervisionSettled = supervisionSettled
        self.helpersRunning = helpersRunning
        self.backgroundJobs = backgroundJobs
        self.leftoversWaiting = leftoversWaiting
        self.upgradeIdle = upgradeIdle
    }

    /// Why a re-exec cannot happen now, or nil when it can.
    public var reexecRefusal: String? {
        var busy: [String] = []
        if !supervisionSettled { busy.append("a restart or drain") }
        if !upgradeIdle || backgroundJobs > 0 { busy.append("an upgrade") }
        if helpersRunning > 0 { busy.append("\(helpersRunning) helper process(es)") }
        if leftoversWaiting { busy.append("processes a generation left") }
        guard !busy.isEmpty else { return nil }
        return "overseerd is busy (\(busy.joined(separator: ", ")) under way); try again when it has settled"
    }
}

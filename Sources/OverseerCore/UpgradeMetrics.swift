/// The counts of upgrades and polls, read off `UpgradeCycle`'s events: no
/// syscall, the caller passes the cycle's state before the event and the
/// monotonic time (ns).
public struct UpgradeMetrics: Equatable, Sendable {
    /// What a poll found.
    public enum PollResult: String, CaseIterable, Sendable {
        /// A binary neither installed nor rejected: it goes on to be verified.
        case new
        /// Nothing new: not modified, the installed binary, a rejected one, a release not for this host yet.
        case unchanged
        /// The fetch failed, or the upgrade was abandoned before anything was verified.
        case failed
    }

    /// New binaries that passed every check and were installed.
    public private(set) var installed: UInt64 = 0
    /// New binaries that failed a check.
    public private(set) var rejected: UInt64 = 0
    /// Installed binaries put back: their generation did not become ready, failed its probation, or was yanked.
    public private(set) var rolledBack: UInt64 = 0
    public private(set) var polls: [PollResult: UInt64] = [:]
    /// The last poll's end (monotonic ns) and result.
    public private(set) var lastPoll: (at: Int64, result: PollResult)?

    public init() {}

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.installed == rhs.installed && lhs.rejected == rhs.rejected && lhs.rolledBack == rhs.rolledBack
            && lhs.polls == rhs.polls && lhs.lastPoll?.at == rhs.lastPoll?.at && lhs.lastPoll?.result == rhs.lastPoll?.result
    }

    /// Reads what `event`, handled in state `before`, says.
    public mutating func observe(_ event: UpgradeCycle.Event, before: UpgradeCycle.State, actions: [UpgradeCycle.Action], now: Int64) {
        switch (before, event) {
        case (.fetching, .unchanged):
            poll(.unchanged, now)
        case (.fetching, .fetchFailed), (.fetching, .abandoned):
            poll(.failed, now)
        case (.fetching, .fetched):
            let goesOn = actions.contains { if case .verify = $0 { true } else if case .install = $0 { true } else { false } }
            poll(goesOn ? .new : .unchanged, now)
        case let (.verifying(step, _), .stepFailed(failed, _)) where failed == step:
            rejected += 1
        case (.installing, .installed):
            installed += 1
        default:
            break
        }
    }

    /// `BinaryLife` put the last good binary back (a failed trial, a yanked release).
    public mutating func countRollback() {
        rolledBack += 1
    }

    private mutating func poll(_ result: PollResult, _ now: Int64) {
        polls[result, default: 0] += 1
        lastPoll = (now, result)
    }
}

/// Which exited processes overseerd reaps itself when it is PID 1 of its PID
/// namespace or a child subreaper (`--subreaper`): every process the kernel
/// reparented to it (what a generation double-forked, what a generation left
/// when it exited), and never a generation or a helper, whose exit status
/// belongs to the code that started it.
///
/// A sweep runs on each SIGCHLD (and at start). The caller peeks at one exited
/// child without reaping it (`waitid(P_ALL, WEXITED|WNOHANG|WNOWAIT)`), asks who
/// owns that pid and hands the answer here, which says what to do:
///
/// - nobody owns it: reap that pid (`waitid(P_PID)`), count it, peek again;
/// - a generation or a helper owns it: its owner takes its status now, through
///   its own reap; the peek would otherwise return that zombie again and hide
///   the orphans behind it. An owner that did not take it (peeked again in the
///   same sweep) ends the sweep: its own wake-up (the pidfd) comes later, and
///   the next SIGCHLD sweeps again;
/// - no exited child: the sweep is over.
///
/// A sweep takes at most `stepsPerSweep` steps, so that a flood of orphans
/// cannot hold the loop; then it asks to be continued on the next turn.
public struct OrphanReaping: Sendable {
    /// Who collects a process's exit status.
    public enum Owner: Equatable, Sendable {
        case generation(Int)
        case helper
        /// Nobody: an orphan the kernel reparented to overseerd.
        case none
    }

    /// What to do after a peek.
    public enum Step: Equatable, Sendable {
        /// Nobody owns `pid`: reap it, report `reaped(pid:exit:)`, peek again.
        case reap(pid: Int32)
        /// Let `owner` take `pid`'s status through its own reap, then peek again.
        case handOver(pid: Int32, to: Owner)
        /// Nothing more to reap now.
        case done
        /// The sweep used its steps: sweep again on the loop's next turn.
        case continueLater
    }

    /// The most steps one sweep takes before it yields to the loop.
    public static let stepsPerSweep = 256

    /// Orphans reaped since overseerd started.
    public private(set) var reaped = 0
    private var handedOver: Set<Int32> = []
    private var steps = 0

    public init() {}

    /// A sweep begins (a SIGCHLD, overseerd's start, a continued sweep).
    public mutating func sweepStarted() {
        handedOver = []
        steps = 0
    }

    /// What to do about the exited child a peek found (`pid` nil: none has exited).
    public mutating func peeked(_ pid: Int32?, owner: Owner) -> Step {
        guard let pid else { return .done }
        steps += 1
        if steps > Self.stepsPerSweep { return .continueLater }
        switch owner {
        case .none:
            return .reap(pid: pid)
        case .generation, .helper:
            // Handed over once: if it is still there its owner could not take it
            // now, and peeking on would find it again and again.
            guard handedOver.insert(pid).inserted else { return .done }
            return .handOver(pid: pid, to: owner)
        }
    }

    /// An orphan was reaped with `exit`: counted, and one debug line.
    public mutating func reaped(pid: Int32, exit: ProcessExit) -> LogLine {
        reaped += 1
        return LogLine(.debug, .orphanReaped, "reaped orphan pid \(pid) (\(exit)); \(reaped) so far")
    }
}

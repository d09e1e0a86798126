import Glibc
import COverseerShims
import OverseerCore

/// The kernel's side of reaping orphans (the policy is `OrphanReaping`'s):
/// knowing whether overseerd is PID 1 of its PID namespace, becoming a child
/// subreaper, peeking at an exited child without reaping it, reaping one pid,
/// and, for an exit as PID 1, emptying the namespace.
public enum OrphanReaper {
    /// Whether this process is PID 1 of its PID namespace (a container's first process).
    public static var isNamespaceInit: Bool { getpid() == 1 }

    /// Orphaned descendants are reparented to this process from now on
    /// (`PR_SET_CHILD_SUBREAPER`).
    public static func becomeSubreaper() throws(SystemError) {
        guard overseer_set_child_subreaper() == 0 else { throw .last("prctl(PR_SET_CHILD_SUBREAPER)") }
    }

    /// The pid of a child that has exited, left as it is (a zombie, its status
    /// untaken); nil when none has exited.
    public static func peekExited() throws(SystemError) -> Int32? {
        let pid = overseer_peek_exited_child()
        if pid < 0 { throw .last("waitid(P_ALL, WNOWAIT)") }
        return pid == 0 ? nil : pid
    }

    /// Reaps `pid` if it has exited; nil while it runs. Only for a pid nobody
    /// else owns: its status is gone once taken.
    public static func reap(_ pid: Int32) throws(SystemError) -> ProcessExit? {
        var code: Int32 = -1
        var signal: Int32 = -1
        let rc = overseer_reap_pid(pid, &code, &signal)
        if rc < 0 { throw .last("waitid(P_PID)", on: "pid \(pid)") }
        guard rc == 1 else { return nil }
        return code >= 0 ? .exited(code) : .killed(signal: signal)
    }

    /// `kill(-1, signal)`: every process this one may signal except itself; as
    /// PID 1 of a namespace, every other process in it. False when there was none.
    @discardableResult
    public static func signalEveryOtherProcess(_ signal: Int32) -> Bool {
        kill(-1, signal) == 0
    }

    /// Whether this process has any child left, exited or not.
    public static var hasChildren: Bool { overseer_has_children() != 0 }

    /// Sleeps until a child exits (SIGCHLD, which stays blocked) or `timeout`
    /// passes; for the last moments of an exit, when the loop no longer runs.
    public static func waitForChildExit(timeout: Duration) {
        _ = overseer_wait_for_sigchld(timeout.totalNanoseconds)
    }
}

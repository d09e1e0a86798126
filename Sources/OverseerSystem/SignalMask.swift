import Glibc

/// The calling thread's signal mask, for the short-lived commands
/// (`overseerd status`, `restart --wait`) that are not the daemon: they must
/// end on Ctrl-C or `timeout`'s SIGTERM like any other command.
public enum SignalMask {
    /// Unblocks every signal, so that each takes its disposition again (for
    /// SIGINT, SIGTERM, SIGHUP: end the process, unless the parent made it ignored).
    public static func unblockAll() {
        var empty = sigset_t()
        sigemptyset(&empty)
        sigprocmask(SIG_SETMASK, &empty, nil)
    }
}

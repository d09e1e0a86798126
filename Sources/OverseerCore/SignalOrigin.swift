import Glibc

/// Who a signal overseerd read is for. The kernel raises some signals against
/// the process that caused them: SIGPIPE (a write to a closed pipe), SIGXFSZ
/// (a write over the file size limit, `ulimit -f` / `LimitFSIZE=`), SIGXCPU
/// (the CPU time limit), SIGSYS (a system call a seccomp filter traps). Those
/// are overseerd's own news, not an operator's wish: passing them on would
/// make the program pay for overseerd's write (a program killed by SIGXFSZ,
/// overseerd exiting 153).
public enum SignalOrigin: Equatable, Sendable {
    /// Sent by someone (an operator, systemd, a script): it goes on as configured.
    case sent
    /// Raised against overseerd itself: kept, never forwarded.
    case raisedAgainstItself

    /// The signals the kernel raises against the process that caused them.
    public static let selfRaisable: Set<Int32> = [SIGPIPE, SIGXFSZ, SIGXCPU, SIGSYS]

    /// `SI_KERNEL` (0x80) from <asm-generic/siginfo.h>.
    static let kernelCode: Int32 = 0x80

    /// Judges one signal from its `signalfd_siginfo`: `code` is `ssi_code`,
    /// `sender` is `ssi_pid`. A signal-specific code (> 0, e.g. `SYS_SECCOMP`) or
    /// `SI_KERNEL` is the kernel's; `SI_USER` with overseerd's own pid is what
    /// the kernel writes for SIGPIPE and SIGXFSZ raised by a write (or what
    /// overseerd sent itself). Anything else (`SI_USER`, `SI_QUEUE`, `SI_TKILL`
    /// from another pid) was sent, even a SIGXFSZ from `kill -XFSZ`.
    public static func of(signal: Int32, code: Int32, sender: Int32, ownPID: Int32) -> SignalOrigin {
        guard selfRaisable.contains(signal) else { return .sent }
        if code > 0 || code == kernelCode || sender == 0 || sender == ownPID { return .raisedAgainstItself }
        return .sent
    }
}

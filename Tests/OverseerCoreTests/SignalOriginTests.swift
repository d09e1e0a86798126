import Glibc
import OverseerCore
import Testing

/// Signals the kernel raises against overseerd are kept; the same signals sent by someone go on.
@Suite struct SignalOriginTests {
    static let own: Int32 = 1000
    static let operatorPID: Int32 = 4242
    static let user: Int32 = 0, queue: Int32 = -1, tkill: Int32 = -6, kernel: Int32 = 0x80, seccomp: Int32 = 1

    @Test(arguments: [
        // A write over RLIMIT_FSIZE or to a closed pipe: SI_USER from ourselves.
        (SIGXFSZ, user, own, SignalOrigin.raisedAgainstItself),
        (SIGPIPE, user, own, .raisedAgainstItself),
        // RLIMIT_CPU: SI_KERNEL, no sender.
        (SIGXCPU, kernel, 0, .raisedAgainstItself),
        // seccomp's SECCOMP_RET_TRAP: a positive code.
        (SIGSYS, seccomp, 0, .raisedAgainstItself),
        // The same signals sent by an operator go on.
        (SIGXFSZ, user, operatorPID, .sent),
        (SIGXCPU, queue, operatorPID, .sent),
        (SIGSYS, tkill, operatorPID, .sent),
        (SIGPIPE, user, operatorPID, .sent),
        // Other signals are never judged by who raised them: a terminal's SIGHUP is the kernel's too.
        (SIGHUP, kernel, 0, .sent),
        (SIGINT, kernel, 0, .sent),
        (SIGUSR1, user, own, .sent),
        (SIGTERM, user, operatorPID, .sent),
    ])
    func originsAreToldApart(signal: Int32, code: Int32, sender: Int32, expected: SignalOrigin) {
        #expect(SignalOrigin.of(signal: signal, code: code, sender: sender, ownPID: Self.own) == expected)
    }
}

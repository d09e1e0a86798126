/// How a process ended: with an exit code, or killed by a signal.
public enum ProcessExit: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case killed(signal: Int32)

    /// What a shell puts in `$?` for it.
    public var shellStatus: Int32 {
        switch self {
        case let .exited(code): code
        case let .killed(signal): 128 + signal
        }
    }

    public var description: String {
        switch self {
        case let .exited(code): "status \(code)"
        case let .killed(signal): "signal \(SignalNumber.name(signal))"
        }
    }
}

/// overseerd's own exit codes: a stable contract. Otherwise overseerd exits
/// the way its child did (same code, or death by the same signal).
public enum OverseerExitCode {
    /// The command line or an OVERSEERD_* variable is wrong (swift-argument-parser's code).
    public static let usage: Int32 = 64
    /// The first child did not become ready within --ready-timeout.
    public static let notReady: Int32 = 69
    /// A system call failed while starting (bind, fork, signalfd, …).
    public static let systemFailure: Int32 = 71
    /// The program exists but cannot be executed.
    public static let cannotExecute: Int32 = 126
    /// The program was not found.
    public static let notFound: Int32 = 127
}

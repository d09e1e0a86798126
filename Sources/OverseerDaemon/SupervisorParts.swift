import Logging
import OverseerCore
import OverseerSystem

/// What a `Supervisor` is assembled from. The daemon gives the real parts
/// (`real`); a test gives its own seams (tableflip's `env`, in small): a spawn
/// that records its requests, an exit that records the status instead of ending
/// the process. The loop, the helpers, the outbox and the signal source are
/// the real ones in both, over fds the test owns.
struct SupervisorParts {
    let reactor: Reactor
    let systemd: SystemdOutbox
    let helpers: HelperRunner
    let signalSource: SignalSource
    /// Starts a generation's process (the C shim's fork and exec).
    let spawn: (ChildProcess.Request) throws(ChildProcess.SpawnError) -> ChildProcess
    /// Leaves overseerd the way a child ended; the real one never returns.
    let exit: (ProcessExit) -> Void

    static func real(environment: ProcessEnvironment, logger: Logger) throws(SystemError) -> SupervisorParts {
        try with(environment: environment, logger: logger, spawn: { (request) throws(ChildProcess.SpawnError) in try ChildProcess.spawn(request) },
                 exit: { status in
                     switch status {
                     case let .exited(code): Posix.exit(code)
                     case let .killed(signal): dieBySignal(signal)
                     }
                 })
    }

    /// The real loop, helpers, outbox and signal source, with `spawn` and `exit` given.
    static func with(environment: ProcessEnvironment, logger: Logger,
                     spawn: @escaping (ChildProcess.Request) throws(ChildProcess.SpawnError) -> ChildProcess,
                     exit: @escaping (ProcessExit) -> Void) throws(SystemError) -> SupervisorParts {
        let reactor = try Reactor()
        return SupervisorParts(reactor: reactor,
                               systemd: SystemdOutbox(notifier: SystemdNotifier(environment: environment.dictionary), loop: reactor),
                               helpers: HelperRunner(loop: reactor, logger: logger),
                               signalSource: try SignalSource(), spawn: spawn, exit: exit)
    }
}

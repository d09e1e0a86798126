import Glibc
import Logging
import OverseerCore
import OverseerProtocol
import OverseerSystem
import SystemPackage

/// The daemon: one thread, one event loop, one owner of all state. Kernel
/// events (signals, child exits, notify datagrams, timers) become events of
/// the pure machines (`Supervision`, `LeftoverCleanup`; the `UpgradeCycle`
/// inside `UpgradeDriver`); the actions they return are carried out here and
/// nothing is decided here. The parts around it (the upgrade driver, the
/// control socket, the helpers) get a narrow interface (`EventScheduling`,
/// `HelperStarting`, `ControlTarget`, `UpgradeHost`), never this object's state.
public final class Supervisor {
    /// A child process of one generation and what overseerd keeps for it.
    struct Child {
        let generation: Int
        let process: ChildProcess
        let notify: NotifyReceiver?
        let binaryID: String
        let startedAt: Int64
        var lastStatus: String?
        /// STOPPING=1 was logged (once per generation).
        var saidStopping = false
        /// When it last sent WATCHDOG=1.
        var lastWatchdog: Int64?
        var watches: [WatchToken] = []
    }

    /// How the last restart ended, for `status` and STATUS=.
    struct RestartRecord {
        let outcome: Supervision.RestartOutcome
        let at: Int64
        let message: String
    }

    let configuration: Configuration
    let environment: ProcessEnvironment
    let listeners: [Listener]
    let logger: Logger
    let systemd: SystemdOutbox
    let reactor: Reactor
    let helpers: HelperRunner
    let signalSource: SignalSource
    /// `--child-output capture`: reads the generations' output (set by `Daemon` before `run`).
    var childOutput: ChildOutputRelay?
    var supervision: Supervision
    var leftoverCleanup: LeftoverCleanup
    var children: [Int: Child] = [:]
    /// Processes exited generations left in their process groups, by generation.
    var leftovers: [Int: [ChildProcess]] = [:]
    var leftoverDeadlines: [Int: DeadlineToken] = [:]
    private var supervisionDeadlines: [Supervision.Timer: DeadlineToken] = [:]
    var upgrade: UpgradeDriver?
    let upgradePlan: UpgradeDriver.Plan?
    var startedAt = MonotonicTimer.now
    /// Set when this image took over from an earlier one.
    let handover: HandoverState?
    var lastRestart: RestartRecord?
    var control: ControlServer?
    /// The `--metrics-listen` socket, until `MetricsServer` serves on it.
    let metricsListener: Listener?
    var metricsServer: MetricsServer?
    /// Restart, readiness and exit figures, read off the machine's events and actions.
    var restartMetrics = RestartMetrics()
    /// The binary each recent generation was started from.
    var spawnedBinaries: [Int: String] = [:]
    /// The generation being reaped, while the machine's lines about its exit are logged.
    var justReaped: (generation: Int, pid: Int32, binary: String)?
    /// The program's hash while its file is unchanged (`Supervisor+BinaryID`).
    var binaryHashes = BinaryHashCache()
    /// Programs whose cache file was read already (once each); a new hash not yet written; a warning given.
    var binaryHashFilesRead: Set<String> = []
    var binaryHashUnsaved = false
    var binaryHashWarned = false
    var notifyWarnings = WarningThrottle()
    var statusRelay = StatusRelay()
    /// A held STATUS= change waits for these, per generation.
    var statusFlushes: [Int: DeadlineToken] = [:]
    /// When the code pages that only some work needed leave the resident set.
    var codePageRelease = CodePageRelease()
    /// The quiet timer was this round's work (it does not arm itself again).
    var codePageTimerFired = false
    /// Set while the new image's --check-configuration runs.
    var reexecPending = false
    /// Upgrades rolled back after failing their probation.
    var rollbacks = 0
    /// Logged once the previous binary serves again after a rollback.
    var pendingRollback: String?
    /// The next check of the probation watchdog.
    var probationWatch: DeadlineToken?
    private var pending: [Supervision.Event] = []

    /// Sets up the loop around listeners that are already bound.
    init(configuration: Configuration, environment: ProcessEnvironment, listeners: [Listener], metricsListener: Listener? = nil,
         upgradePlan: UpgradeDriver.Plan?, handover: HandoverState? = nil, logger: Logger) throws(SystemError) {
        self.handover = handover
        self.metricsListener = metricsListener
        self.configuration = configuration
        self.upgradePlan = upgradePlan
        self.environment = environment
        self.listeners = listeners
        self.logger = logger
        let reactor = try Reactor()
        self.reactor = reactor
        self.systemd = SystemdOutbox(notifier: SystemdNotifier(environment: environment.dictionary), loop: reactor)
        self.helpers = HelperRunner(loop: reactor, logger: logger)
        self.signalSource = try SignalSource()
        self.supervision = Supervision(settings: .init(configuration))
        self.leftoverCleanup = LeftoverCleanup(grace: configuration.stopTimeout)
        _ = try reactor.watch(signalSource.fd) { [unowned self] in readSignals() }
        if let handover { try adopt(handover) }
    }

    /// Takes the serving child over from the image that re-executed into this one.
    private func adopt(_ state: HandoverState) throws(SystemError) {
        let record = state.child
        startedAt = state.startedAt
        supervision = Supervision(settings: .init(configuration), adoptingServing: record.generation)
        let process = ChildProcess(adopting: record.pid, pidfd: record.pidfd)
        var notify: NotifyReceiver?
        if let fd = record.notifyFD, let address = record.notifyAddress { notify = NotifyReceiver(adopting: fd, address: address) }
        children[record.generation] = Child(generation: record.generation, process: process, notify: notify,
                                            binaryID: record.binaryID, startedAt: record.startedAt, lastStatus: record.lastStatus,
                                            lastWatchdog: record.lastWatchdog)
        spawnedBinaries[record.generation] = record.binaryID
        try watch(record.generation)
    }

    /// Starts the first child and serves until overseerd is to exit; never returns.
    public func run() -> Never {
        openControlSocket()
        serveMetrics()
        startWatchdog()
        storeListenersWithSystemd()
        startUpgrades()
        if let handover {
            let child = handover.child
            logger.log(.notice, .tookOver, "took over from the previous overseerd image: generation \(child.generation) (pid \(child.pid)) keeps serving", generation: child.generation, pid: child.pid)
            systemd.send(NotifyMessage([("STATUS", serviceStatus(serving: child.generation))]))
            if upgrade?.startsOnProbation == true { feed(.upgradeServing(generation: child.generation)) }
            // It may have exited while the images changed.
            reap(child.generation)
        } else {
            if upgrade?.startsOnProbation == true { feed(.firstGenerationOnProbation) }
            feed(.started)
        }
        while true {
            do {
                try reactor.runOnce()
                releaseCodePagesWhenQuiet()
            } catch {
                logger.log(.critical, .internalError, "\(error) — overseerd cannot go on watching its child")
                exitNow(.exited(OverseerExitCode.systemFailure))
            }
        }
    }

    private func openControlSocket() {
        do {
            if let fd = handover?.controlFD, let path = handover?.controlPath {
                control = try ControlServer(adopting: FileDescriptor(rawValue: fd), path: path, loop: reactor, target: self, logger: logger)
            } else if let path = configuration.controlSocket {
                let isDefault = path == ControlSocketPath.defaultPath(environment: environment.dictionary, uid: Posix.userID)
                control = try ControlServer(path: path, ownDirectory: isDefault, loop: reactor, target: self, logger: logger)
                logger.log(.info, .controlSocket, "control socket at \(path)")
            }
        } catch {
            logger.log(.warning, .controlSocket, "no control socket: \(error)\(handover == nil ? " (give --control-socket PATH, or none)" : "")")
        }
    }

    private func startUpgrades() {
        guard let upgradePlan else { return }
        do {
            upgrade = try UpgradeDriver(plan: upgradePlan, loop: reactor, helpers: helpers, host: self, logger: logger,
                                        rejected: handover?.rejected ?? [])
        } catch {
            logger.log(.error, .configurationError, "upgrades are off: \(error)")
        }
    }

    // MARK: - Feeding the machine, carrying out its actions

    func feed(_ event: Supervision.Event) {
        pending.append(event)
        // Events raised while acting (a spawn's result) are handled in order, after the current ones.
        guard pending.count == 1 else { return }
        while let next = pending.first {
            let actions = supervision.handle(next)
            restartMetrics.observe(next, actions: actions, restartQueued: supervision.restartQueued, now: MonotonicTimer.now)
            for action in actions { perform(action) }
            pending.removeFirst()
        }
    }

    /// Queues an event raised while an action is carried out (a spawn's result).
    func raise(_ event: Supervision.Event) { pending.append(event) }

    private func perform(_ action: Supervision.Action) {
        switch action {
        case let .spawnChild(generation):
            spawn(generation)
        case let .signalChild(generation, signal):
            guard let child = children[generation] else { return }
            logger.log(.debug, .signalForwarded, "sending \(SignalNumber.name(signal)) to generation \(generation) (pid \(child.process.pid))", generation: generation, pid: child.process.pid)
            child.process.signal(signal)
            // A stopped (SIGSTOP) child could not act on a stop signal: wake it, as systemd does.
            if SignalNumber.stopping.contains(signal) || signal == configuration.stopSignal { child.process.signal(SIGCONT) }
        case let .killGeneration(generation):
            guard let child = children[generation] else { return }
            child.process.signal(SIGKILL)
            child.process.signalProcessGroup(SIGKILL)
        case let .startTimer(timer, after):
            if case .probation = timer, let limit = configuration.upgrade?.probationWatchdog { watchProbation(every: limit / 4, limit: limit) }
            reactor.cancel(supervisionDeadlines[timer])
            supervisionDeadlines[timer] = reactor.schedule(after: after) { [unowned self] in
                supervisionDeadlines[timer] = nil
                feed(.timerFired(timer))
            }
        case let .cancelTimer(timer):
            reactor.cancel(supervisionDeadlines.removeValue(forKey: timer))
        case let .report(state):
            report(state)
        case let .log(line):
            log(line)
        case let .exit(status):
            exitNow(status)
        case let .rollBack(generation, _, reason):
            rollbacks += 1
            pendingRollback = upgrade?.failedProbation(generation: generation, reason: reason)
        case .probationPassed:
            upgrade?.probationPassed()
        }
    }

    func perform(_ actions: [LeftoverCleanup.Action]) {
        for action in actions {
            switch action {
            case let .startGrace(generation, after):
                leftoverDeadlines[generation] = reactor.schedule(after: after) { [unowned self] in
                    leftoverDeadlines[generation] = nil
                    perform(leftoverCleanup.handle(.graceEnded(generation: generation)))
                }
            case let .kill(generation):
                killLeftovers(of: generation)
            case let .log(line):
                log(line)
            }
        }
    }

    /// After each round of work, once things are quiet again, the code that ran
    /// only for that work leaves overseerd's resident set (`CodePageRelease`).
    private func releaseCodePagesWhenQuiet() {
        if codePageTimerFired {
            codePageTimerFired = false
            return
        }
        guard codePageRelease.worked() else { return }
        _ = reactor.schedule(after: codePageRelease.quiet) { [unowned self] in
            codePageTimerFired = true
            if codePageRelease.quietEnded(faults: CodePages.minorFaults) {
                CodePages.release()
                codePageRelease.released(faults: CodePages.minorFaults)
            }
        }
    }

    /// Logs a machine's line with its generation's pid and binary, while they are known.
    func log(_ line: LogLine) {
        var line = line
        var pid: Int32?
        if let generation = line.generation {
            if let child = children[generation] {
                pid = child.process.pid
                line.binary = line.binary ?? child.binaryID
            } else if let reaped = justReaped, reaped.generation == generation {
                pid = reaped.pid
                line.binary = line.binary ?? reaped.binary
            } else {
                line.binary = line.binary ?? spawnedBinaries[generation]
            }
        }
        logger.log(line, pid: pid)
    }

    func exitNow(_ status: ProcessExit) -> Never {
        // Nobody would stop them after this.
        perform(leftoverCleanup.handle(.exiting))
        control?.close()
        metricsServer?.close()
        for child in children.values { child.notify?.close() }
        helpers.killAll()
        upgrade?.shutdown()
        // What systemd has not been told yet (STOPPING=1, a last STATUS=), before the listeners go (FDSTORE=1 passes them).
        systemd.drain(timeout: .seconds(1))
        ListenerBinder.close(listeners)
        switch status {
        case let .exited(code):
            Posix.exit(code)
        case let .killed(signal):
            dieBySignal(signal)
        }
    }
}

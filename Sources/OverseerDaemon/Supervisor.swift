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
        /// With `--workers`: its worker number (its slot); nil for the one child of a generation.
        var worker: Int?
        /// With `--workers`: when it said READY=1.
        var readyAt: Int64?
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
    /// Rollbacks to the last good binary that completed.
    var rollbacks = 0
    /// Where `BinaryLife.Record` is kept (`--state-directory` with upgrades).
    var binaryLifeStore: BinaryLifeStore?
    /// The program file upgrades replace and rollbacks put back (`Installer.target`).
    var upgradeTarget: String?
    /// Restart requests waiting for the program's hash (`whenProgramHashed`); nil while none is computed.
    var programHashWaiters: [() -> Void]?
    /// From a rollback's start until a generation is ready again (`health` says "rolling back").
    var recoveringFromRollback = false
    private var pending: [WorkerPool.Event] = []
    /// `--workers N` with N > 1: the slots and rolls around `supervision` (`Supervisor+Workers`);
    /// `supervision` is then its copy, refreshed after each event. Nil with one child.
    var workerPool: WorkerPool?
    var workerDeadlines: [WorkerPool.Timer: DeadlineToken] = [:]
    /// Set when overseerd reaps orphans (PID 1, --subreaper): `Supervisor+Reaping`.
    var orphans: OrphanReaping?
    /// When the first stop signal came: the platform's stop grace runs from then (`Supervisor+Reaping`).
    var stopSignalledAt: Int64?
    /// The UDP listeners' modes, and the steering of the steered ones (`Supervisor+UDPFlows`).
    let udpFlows = UDPFlows()

    /// Starts a generation's process, and leaves overseerd (`SupervisorParts`).
    let spawnProcess: (ChildProcess.Request) throws(ChildProcess.SpawnError) -> ChildProcess
    private let leave: (ProcessExit) -> Void
    /// Set once `exitNow` has run (in a test, whose exit returns): the loop ends.
    private(set) var hasExited = false

    /// Sets up the loop around listeners that are already bound, from `parts`
    /// (the real ones when nil).
    init(configuration: Configuration, environment: ProcessEnvironment, listeners: [Listener], metricsListener: Listener? = nil,
         upgradePlan: UpgradeDriver.Plan?, handover: HandoverState? = nil, logger: Logger,
         parts: SupervisorParts? = nil) throws(SystemError) {
        let parts = if let parts { parts } else { try SupervisorParts.real(environment: environment, logger: logger) }
        self.handover = handover
        self.metricsListener = metricsListener
        self.configuration = configuration
        self.upgradePlan = upgradePlan
        self.environment = environment
        self.listeners = listeners
        self.logger = logger
        self.reactor = parts.reactor
        self.systemd = parts.systemd
        self.helpers = parts.helpers
        self.signalSource = parts.signalSource
        self.spawnProcess = parts.spawn
        self.leave = parts.exit
        self.supervision = Supervision(settings: .init(configuration))
        self.leftoverCleanup = LeftoverCleanup(grace: configuration.stopTimeout)
        _ = try parts.reactor.watch(signalSource.fd) { [unowned self] in readSignals() }
        if let handover { try adopt(handover) }
    }

    /// Takes the serving child over from the image that re-executed into this one.
    private func adopt(_ state: HandoverState) throws(SystemError) {
        let record = state.child
        startedAt = state.startedAt
        supervision = Supervision(settings: .init(configuration), adoptingServing: record.generation, binary: record.binaryID)
        // With --workers, `child` is worker 0's process: taken over with the rest.
        if !state.workers.isEmpty { return try adoptWorkers(state.workers) }
        try adopt(record, as: record.generation)
    }

    /// Takes over one process the previous image handed on (its pidfd and notify
    /// socket), kept under `key`: its generation, or with `--workers` its instance.
    func adopt(_ record: HandoverState.ChildRecord, as key: Int, worker: Int? = nil, readyAt: Int64? = nil) throws(SystemError) {
        let process = ChildProcess(adopting: record.pid, pidfd: record.pidfd)
        var notify: NotifyReceiver?
        if let fd = record.notifyFD, let address = record.notifyAddress { notify = NotifyReceiver(adopting: fd, address: address) }
        children[key] = Child(generation: record.generation, process: process, notify: notify, binaryID: record.binaryID,
                              startedAt: record.startedAt, lastStatus: record.lastStatus, lastWatchdog: record.lastWatchdog,
                              worker: worker, readyAt: readyAt)
        spawnedBinaries[record.generation] = record.binaryID
        try watch(key)
    }

    /// Starts the first child and serves until overseerd is to exit; never returns.
    public func run() -> Never {
        start()
        while true { turn() }
    }

    /// Everything before the loop: the control socket, the metrics endpoint,
    /// systemd, upgrades, and the first generation (or the adopted one).
    func start() {
        openControlSocket()
        serveMetrics()
        startWatchdog()
        storeListenersWithSystemd()
        startUpgrades()
        startReapingOrphans()
        startUDPFlows()
        if let handover {
            let child = handover.child
            let workers = handover.workers.isEmpty ? "" : " with its \(handover.workers.count) workers (pids \(handover.workers.map { String($0.process.pid) }.joined(separator: ", ")))"
            logger.log(.notice, .tookOver, "took over from the previous overseerd image: generation \(child.generation) (pid \(child.pid))\(workers) keeps serving", generation: child.generation, pid: child.pid)
            systemd.send(NotifyMessage([("STATUS", serviceStatus(serving: child.generation))]))
            // A trial goes on: its window runs from now, in this image.
            if upgrade != nil { feed(.binaryLife(.generationReady(child.generation))) }
            // It may have exited while the images changed.
            if handover.workers.isEmpty { reap(child.generation) }
            resumeAdoptedWorkers()
        } else {
            feed(.started)
        }
        // Orphans that exited before (a re-exec): no SIGCHLD may come for them.
        reapOrphans()
    }

    /// One turn of the loop: wait for what is ready, handle it.
    func turn() {
        guard !hasExited else { return }
        do {
            try reactor.runOnce()
            releaseCodePagesWhenQuiet()
        } catch {
            logger.log(.critical, .internalError, "\(error) — overseerd cannot go on watching its child")
            exitNow(.exited(OverseerExitCode.systemFailure))
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

    /// Reads what is known of the binaries (the previous image's record, else the
    /// state directory's), reconciles it with the program file, then starts the driver.
    private func startUpgrades() {
        guard let upgradePlan else { return }
        let target: String
        do {
            target = Installer.target(of: try resolvedProgram())
        } catch {
            logger.log(.error, .configurationError, "upgrades are off: \(error)")
            return
        }
        upgradeTarget = target
        if let directory = upgradePlan.settings.stateDirectory {
            binaryLifeStore = BinaryLifeStore(directory: directory, program: target, loop: reactor, logger: logger)
        } else {
            logger.log(.notice, .stateWarning, "no --state-directory (nor $STATE_DIRECTORY): rejected binaries and a binary on trial are forgotten when overseerd restarts (a re-exec keeps them)")
        }
        var record = binaryLifeStore?.load() ?? BinaryLife.Record(program: target)
        if binaryLifeStore?.directoryProblem == nil, let held = binaryLifeStore?.takeLock() {
            logger.log(.error, .configurationError, "upgrades are off: another overseerd keeps the upgrade state of \(target) in \(upgradePlan.settings.stateDirectory ?? "?") (\(held)); give each instance of one program its own --state-directory")
            binaryLifeStore = nil
            return
        }
        if let problem = binaryLifeStore?.directoryProblem {
            // Unusable from the start: as without a state directory (a write failing later, a full disk, holds installs instead).
            logger.log(.warning, .stateWarning, "the state directory is not used: \(problem); rejected binaries and a binary on trial are kept in memory only, as without --state-directory")
            binaryLifeStore = nil
        }
        if let text = handover?.binaryLife {
            do {
                record = try BinaryLife.Record(parsing: text)
            } catch {
                logger.log(.warning, .stateWarning, "the previous image's upgrade state ignored: \(error)")
            }
        }
        record.rejected.formUnion(handover?.rejected ?? [])
        if let child = handover?.child {
            supervision = Supervision(settings: .init(configuration), adoptingServing: child.generation, binary: child.binaryID, record: record)
        } else {
            supervision = Supervision(settings: .init(configuration), record: record)
        }
        feed(.binaryLife(.started(identified: identify(target))))
        do {
            upgrade = try UpgradeDriver(plan: upgradePlan, loop: reactor, helpers: helpers, host: self, logger: logger)
        } catch {
            logger.log(.error, .configurationError, "upgrades are off: \(error)")
        }
    }

    // MARK: - Feeding the machine, carrying out its actions

    func feed(_ event: Supervision.Event) { feedWorker(.supervision(event)) }

    /// Feeds the machine: `supervision` alone, or with `--workers` the pool around it.
    func feedWorker(_ event: WorkerPool.Event) {
        pending.append(event)
        // Events raised while acting (a spawn's result) are handled in order, after the current ones.
        guard pending.count == 1 else { return }
        var trialEnded = false
        if configuration.workers.count > 1, workerPool == nil {
            workerPool = makeWorkerPool()
        }
        while let next = pending.first, !hasExited {
            let busyBefore = supervision.binaryLife.isOnTrial || supervision.binaryLife.rollback != nil
            if workerPool != nil {
                handleWorkers(next)
            } else if case let .supervision(event) = next {
                let actions = supervision.handle(event)
                // Before the actions: new UDP flows go to a new serving generation before any line says it serves.
                followServingWithUDPFlows()
                restartMetrics.observe(event, actions: actions, restartQueued: supervision.restartQueued, now: MonotonicTimer.now)
                for action in actions { perform(action) }
            }
            pending.removeFirst()
            if busyBefore, !supervision.binaryLife.isOnTrial, supervision.binaryLife.rollback == nil { trialEnded = true }
        }
        // Once the queue is empty: the driver's install then feeds BinaryLife and sees the result at once.
        if trialEnded { upgrade?.trialEnded() }
    }

    /// Queues an event raised while an action is carried out (a spawn's result).
    func raise(_ event: Supervision.Event) { pending.append(.supervision(event)) }

    /// Queues a worker's event raised while an action is carried out (a spawn's result).
    func raiseWorker(_ event: WorkerPool.Event) { pending.append(event) }

    func perform(_ action: Supervision.Action) {
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
            reactor.cancel(supervisionDeadlines[timer])
            supervisionDeadlines[timer] = reactor.schedule(after: after) { [unowned self] in
                supervisionDeadlines[timer] = nil
                if case .trialWatchdog = timer {
                    feed(.binaryLife(.trialWatchdogChecked(stale: generationsThatStoppedPinging())))
                } else {
                    feed(.timerFired(timer))
                }
            }
        case let .cancelTimer(timer):
            reactor.cancel(supervisionDeadlines.removeValue(forKey: timer))
        case let .report(state):
            report(state)
        case let .log(line):
            log(line)
        case let .exit(status):
            exitNow(status)
        case .persistState:
            binaryLifeStore?.save(supervision.binaryLife.record)
        case let .rollBack(target, bad):
            recoveringFromRollback = true
            rollBack(to: target, replacing: bad)
        }
    }

    func perform(_ actions: [LeftoverCleanup.Action]) {
        for action in actions {
            switch action {
            case let .startGrace(key, after):
                leftoverDeadlines[key] = reactor.schedule(after: after) { [unowned self] in
                    leftoverDeadlines[key] = nil
                    perform(leftoverCleanup.handle(.graceEnded(key: key)))
                }
            case let .kill(key, owner):
                killLeftovers(of: key, owner)
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
            if workerPool == nil, let child = children[generation] {
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

    /// Ends overseerd the way `status` says, after what must happen before (the
    /// daemon's exit never returns; a test's does, and the loop then ends).
    func exitNow(_ status: ProcessExit) {
        guard !hasExited else { return }
        hasExited = true
        // Nobody would stop them after this.
        perform(leftoverCleanup.handle(.exiting))
        control?.close()
        metricsServer?.close()
        for child in children.values { child.notify?.close() }
        helpers.killAll()
        upgrade?.shutdown()
        binaryLifeStore?.flush()
        emptyNamespaceIfInit()
        // What systemd has not been told yet (STOPPING=1, a last STATUS=), before the listeners go (FDSTORE=1 passes them).
        systemd.drain(timeout: .seconds(1))
        ListenerBinder.close(listeners)
        leave(status)
    }
}

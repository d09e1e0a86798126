import Glibc

/// The supervisor's decisions, without a single syscall: events go in, the
/// actions to perform come out, in order.
///
/// A generation is one child process. At most one generation is *serving*
/// (ready, and the one that gets forwarded signals), at most one is the
/// *candidate* (started, not yet ready), and any number are *draining*
/// (asked to stop, waiting to exit). The listening sockets are never touched
/// here: every generation shares them, and the kernel queues connections for
/// whichever generation accepts.
public struct Supervision: Sendable {
    /// The timing and signal choices the machine needs.
    public struct Settings: Equatable, Sendable {
        public var readiness: ReadinessMode
        public var readyTimeout: Duration
        public var stopSignal: Int32
        public var stopTimeout: Duration
        /// How long a newly installed binary must serve before it is trusted
        /// (`--probation`); zero: trusted once a generation on it is ready.
        public var probation: Duration
        /// `--probation-watchdog`: a generation on trial that pinged and then stopped for this long has failed.
        public var probationWatchdog: Duration?

        public init(readiness: ReadinessMode = .default, readyTimeout: Duration = .seconds(60),
                    stopSignal: Int32 = SIGTERM, stopTimeout: Duration = .seconds(30), probation: Duration = .zero,
                    probationWatchdog: Duration? = nil) {
            self.readiness = readiness
            self.readyTimeout = readyTimeout
            self.stopSignal = stopSignal
            self.stopTimeout = stopTimeout
            self.probation = probation
            self.probationWatchdog = probationWatchdog
        }

        public init(_ configuration: Configuration) {
            self.init(readiness: configuration.readiness, readyTimeout: configuration.readyTimeout,
                      stopSignal: configuration.stopSignal, stopTimeout: configuration.stopTimeout,
                      probation: configuration.upgrade?.probation ?? .zero,
                      probationWatchdog: configuration.upgrade?.probationWatchdog)
        }
    }

    /// Something that happened.
    public enum Event: Equatable, Sendable {
        /// overseerd has its sockets and is to start the first child.
        case started
        /// The child of `generation` exists (its pid is known to the caller),
        /// started from the program file whose SHA-256 is `binary`.
        case childSpawned(generation: Int, binary: String = "")
        /// The child of `generation` could not be started; `exitCode` is what
        /// overseerd exits with when this was the first one. `binary`: the
        /// program file's SHA-256, when it was read before the start failed.
        case childSpawnFailed(generation: Int, exitCode: Int32, reason: String, binary: String? = nil)
        /// The child said `READY=1`.
        case childReady(generation: Int)
        case childExited(generation: Int, ProcessExit)
        case timerFired(Timer)
        /// A restart was asked for (restart signal, upgrade, control command).
        case restartRequested(reason: String)
        /// SIGTERM, SIGINT or SIGQUIT reached overseerd.
        case stopRequested(signal: Int32)
        /// Any other signal to pass on.
        case signalReceived(Int32)
        /// An event of the binaries' life (`BinaryLife`): an install, a check
        /// that failed, a rollback's end, a yank, the trial watchdog's check.
        /// `.binaryLife(.started(identified:))` comes before `started`.
        case binaryLife(BinaryLife.Event)
        /// With `--workers N`: a worker of the starting `generation` failed
        /// (exited, was not ready in time, could not start), so the generation
        /// has failed before it was ready (`WorkerPool` sends it). `exit` is
        /// what overseerd leaves with when nothing else serves.
        case workersFailed(generation: Int, reason: String, exit: ProcessExit?)
    }

    /// The deadlines the machine asks for.
    public enum Timer: Hashable, Sendable {
        /// A candidate not ready by then has failed.
        case readyTimeout(generation: Int)
        /// With `--ready delay:D`: ready when this fires while the child lives.
        case readyDelay(generation: Int)
        /// A stopping child still alive then gets SIGKILL.
        case stopTimeout(generation: Int)
        /// The binary on trial has served `--probation` since it first served.
        case trialWindow
        /// Time to check the WATCHDOG=1 pings of the generations on trial: the
        /// caller answers with `.binaryLife(.trialWatchdogChecked(stale:))`.
        case trialWatchdog

        /// The generation the timer is about; nil for the binary's timers.
        public var generation: Int? {
            switch self {
            case let .readyTimeout(generation), let .readyDelay(generation), let .stopTimeout(generation): generation
            case .trialWindow, .trialWatchdog: nil
            }
        }
    }

    /// What overseerd tells systemd (and the control socket) about itself.
    public enum ServiceState: Equatable, Sendable {
        /// The first child is ready, or a restart has ended (`success` says how).
        case ready(generation: Int, restartSucceeded: Bool?)
        /// A restart has begun.
        case reloading
        /// overseerd is shutting down.
        case stopping
    }

    public enum LogLevel: Sendable, Equatable { case debug, info, notice, warning, error }

    /// How a restart ended: which generation it started, and why it failed if it did.
    public struct RestartOutcome: Equatable, Sendable {
        /// The generation the restart started.
        public var candidate: Int
        public var succeeded: Bool
        /// Why it failed, as a person reads it; nil when it succeeded.
        public var failure: String?

        public init(candidate: Int, succeeded: Bool, failure: String? = nil) {
            self.candidate = candidate
            self.succeeded = succeeded
            self.failure = failure
        }
    }

    /// Something to do, in order.
    public enum Action: Equatable, Sendable {
        case spawnChild(generation: Int)
        case signalChild(generation: Int, signal: Int32)
        /// SIGKILL to the generation and to every process in its process group:
        /// a generation that would not stop is ended whole.
        case killGeneration(generation: Int)
        case startTimer(Timer, after: Duration)
        case cancelTimer(Timer)
        case report(ServiceState)
        case log(LogLine)
        /// Exit the way this process ended (code, or death by the same signal).
        case exit(ProcessExit)
        /// Write `binaryLife.record` to the state directory, before what follows.
        case persistState
        /// Put the last good binary `to` back in place of `replacing`, then
        /// report `.binaryLife(.rollbackFinished(…))`. No generation is started
        /// until then.
        case rollBack(to: BinaryLife.Release, replacing: BinaryLife.Release)

        public static func log(_ level: LogLevel, _ event: DaemonEvent, _ message: String, generation: Int? = nil) -> Action {
            .log(LogLine(level, event, message, generation: generation))
        }
    }

    enum Phase: Equatable, Sendable {
        case starting
        case serving
        /// Asked to stop; `failed` when it was a candidate that did not make it.
        case stopping(failed: Bool)
    }

    public private(set) var settings: Settings
    private(set) var phases: [Int: Phase] = [:]
    /// The generation that is ready and gets forwarded signals.
    public private(set) var serving: Int?
    /// The generation started and not yet ready.
    public private(set) var candidate: Int?
    /// A restart asked for while another was under way: run it next.
    public private(set) var restartQueued = false
    private var nextGeneration = 1
    /// Set when overseerd is going to exit: every child is stopping and this is
    /// the status to leave with once they have all gone.
    private var exitStatus: ProcessExit?
    private var shuttingDown = false
    /// The generation whose exit status overseerd takes when shutting down.
    private var statusSource: Int?
    /// The serving child's exit while a candidate was still starting.
    private var orphanedExit: ProcessExit?
    /// The binaries' life: the trial, the last good binary, the rejected ones.
    public private(set) var binaryLife: BinaryLife
    /// How the last restart ended; set before its `.report(.ready(…))`.
    public private(set) var lastRestart: RestartOutcome?
    /// The generation started last (0 before the first).
    public var newestGeneration: Int { nextGeneration - 1 }

    /// - Parameter record: what the state directory (or the previous image) kept about the binaries.
    public init(settings: Settings, record: BinaryLife.Record = .init()) {
        self.settings = settings
        binaryLife = BinaryLife(probation: settings.probation, probationWatchdog: settings.probationWatchdog, record: record)
    }

    /// Takes over from an earlier overseerd (a re-exec): `generation` serves,
    /// started from `binary`, nothing else runs, and the next restart starts
    /// `generation + 1`. Feed `.binaryLife(.started(identified:))` next, then
    /// `.binaryLife(.generationReady(generation))`: a trial's window runs from then.
    public init(settings: Settings, adoptingServing generation: Int, binary: String = "",
                record: BinaryLife.Record = .init()) {
        self.init(settings: settings, record: record)
        phases[generation] = .serving
        serving = generation
        nextGeneration = generation + 1
        _ = binaryLife.handle(.generationStarted(generation, binary: binary))
    }



    /// Whether overseerd could hand over to a new image of itself now: one
    /// generation serving and nothing starting, stopping or queued.
    public var isSettled: Bool {
        !shuttingDown && candidate == nil && !restartQueued && serving != nil && phases.count == 1
            && binaryLife.rollback == nil
    }

    /// Generations alive, oldest first.
    public var liveGenerations: [Int] { phases.keys.sorted() }

    /// Whether overseerd is on its way out (every generation is stopping).
    public var isShuttingDown: Bool { shuttingDown }

    /// Whether `generation` is being stopped.
    public func isStopping(_ generation: Int) -> Bool {
        if case .stopping = phases[generation] { return true }
        return false
    }

    /// Feeds one event; returns what to do.
    public mutating func handle(_ event: Event) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .started:
            // A rejected binary found in place is rolled back first; the start waits for it.
            if binaryLife.rollback == nil { startGeneration(into: &actions) }
        case let .childSpawned(generation, binary):
            guard phases[generation] == .starting else { break }
            feedLife(.generationStarted(generation, binary: binary), into: &actions)
            actions.append(.startTimer(.readyTimeout(generation: generation), after: settings.readyTimeout))
            if case let .delay(delay) = settings.readiness {
                actions.append(.startTimer(.readyDelay(generation: generation), after: delay))
            }
        case let .childSpawnFailed(generation, exitCode, reason, binary):
            spawnFailed(generation, exitCode: exitCode, reason: reason, binary: binary, into: &actions)
        case let .childReady(generation):
            becameReady(generation, into: &actions)
        case let .childExited(generation, exit):
            exited(generation, exit, into: &actions)
        case let .timerFired(timer):
            timerFired(timer, into: &actions)
        case let .restartRequested(reason):
            restartRequested(reason: reason, into: &actions)
        case let .stopRequested(signal):
            stopRequested(signal, into: &actions)
        case let .binaryLife(event):
            let wasRollingBack = binaryLife.rollback != nil
            feedLife(event, into: &actions)
            if wasRollingBack, binaryLife.rollback == nil { rollbackEnded(into: &actions) }
            if !wasRollingBack, let rollback = binaryLife.rollback, case let .trialWatchdogChecked(stale) = event {
                // The hung generations go (the one serving too: it no longer answers).
                for generation in stale where binaryLife.generations[generation] == rollback.bad.sha256 && !isStopping(generation) {
                    if generation == serving {
                        serving = nil
                        orphanedExit = orphanedExit ?? .exited(OverseerExitCode.notReady)
                    }
                    if !shuttingDown { stop(generation, signal: settings.stopSignal, failed: true, into: &actions) }
                }
            }
        case let .workersFailed(generation, reason, exit):
            workersFailed(generation, reason: reason, exit: exit, into: &actions)
        case let .signalReceived(signal):
            if let target = serving ?? candidate {
                actions.append(.signalChild(generation: target, signal: signal))
            } else {
                actions.append(.log(.debug, .signalNotForwarded, "\(SignalNumber.name(signal)) not forwarded: no generation is serving"))
            }
        }
        return actions
    }

    // MARK: - Transitions

    private mutating func startGeneration(into actions: inout [Action]) {
        let generation = nextGeneration
        nextGeneration += 1
        phases[generation] = .starting
        candidate = generation
        if generation > 1 { actions.append(.report(.reloading)) }
        actions.append(.spawnChild(generation: generation))
    }

    private mutating func spawnFailed(_ generation: Int, exitCode: Int32, reason: String, binary: String?,
                                      into actions: inout [Action]) {
        guard phases[generation] == .starting else { return }
        phases[generation] = nil
        candidate = nil
        if let binary {
            feedLife(.generationStarted(generation, binary: binary), into: &actions)
            feedLife(.generationFailed(generation, reason: "could not start: \(reason)"), into: &actions)
            feedLife(.generationExited(generation), into: &actions)
        }
        if let serving {
            restartFailed(generation, "generation \(generation) could not start: \(reason); generation \(serving) keeps serving", into: &actions)
            actions.append(.report(.ready(generation: serving, restartSucceeded: false)))
            runQueuedRestart(into: &actions)
        } else if isRollingBack(binary) {
            orphanedExit = orphanedExit ?? .exited(exitCode)
            actions.append(.log(.info, .stopping, "waiting for the rollback before starting generation \(nextGeneration)"))
        } else if orphanedExit == nil {
            actions.append(.log(.error, .spawnFailed, reason, generation: generation))
            finish(with: .exited(exitCode), into: &actions)
        } else {
            actions.append(.log(.error, .spawnFailed, "generation \(generation) could not start: \(reason); nothing is serving", generation: generation))
            finish(with: orphanedExit!, into: &actions)
        }
    }

    private mutating func becameReady(_ generation: Int, into actions: inout [Action]) {
        guard generation == candidate, phases[generation] == .starting, !shuttingDown else { return }
        candidate = nil
        phases[generation] = .serving
        actions.append(.cancelTimer(.readyTimeout(generation: generation)))
        if case .delay = settings.readiness {
            actions.append(.cancelTimer(.readyDelay(generation: generation)))
        }
        if let old = serving {
            actions.append(.log(.notice, .restartSucceeded, "generation \(generation) is ready; stopping generation \(old)", generation: generation))
            stop(old, signal: settings.stopSignal, failed: false, into: &actions)
            lastRestart = RestartOutcome(candidate: generation, succeeded: true)
            actions.append(.report(.ready(generation: generation, restartSucceeded: true)))
        } else if orphanedExit != nil {
            orphanedExit = nil
            actions.append(.log(.notice, .generationReady, "generation \(generation) is ready and serving", generation: generation))
            lastRestart = RestartOutcome(candidate: generation, succeeded: true)
            actions.append(.report(.ready(generation: generation, restartSucceeded: true)))
        } else {
            actions.append(.log(.info, .generationReady, "generation \(generation) is ready", generation: generation))
            actions.append(.report(.ready(generation: generation, restartSucceeded: nil)))
        }
        serving = generation
        feedLife(.generationReady(generation), into: &actions)
        runQueuedRestart(into: &actions)
    }

    private mutating func exited(_ generation: Int, _ exit: ProcessExit, into actions: inout [Action]) {
        guard let phase = phases.removeValue(forKey: generation) else { return }
        actions.append(.cancelTimer(.readyTimeout(generation: generation)))
        if case .delay = settings.readiness {
            actions.append(.cancelTimer(.readyDelay(generation: generation)))
        }
        if case .stopping = phase {
            actions.append(.cancelTimer(.stopTimeout(generation: generation)))
        }
        if shuttingDown {
            feedLife(.generationExited(generation), into: &actions)
            actions.append(.log(.info, .generationStopped, "generation \(generation) exited with \(exit)", generation: generation))
            if generation == statusSource, exitStatus == nil { exitStatus = exit }
            if generation == candidate { candidate = nil }
            if generation == serving { serving = nil }
            exitIfDone(into: &actions)
            return
        }
        let binary = binaryLife.generations[generation]
        switch phase {
        case .starting:
            candidate = nil
            feedLife(.generationFailed(generation, reason: "exited with \(exit) before it was ready"), into: &actions)
            feedLife(.generationExited(generation), into: &actions)
            if let serving {
                restartFailed(generation, "generation \(generation) exited with \(exit) before ready; generation \(serving) keeps serving", into: &actions)
                actions.append(.report(.ready(generation: serving, restartSucceeded: false)))
                runQueuedRestart(into: &actions)
            } else if isRollingBack(binary) {
                orphanedExit = orphanedExit ?? exit
                actions.append(.log(.warning, .generationExited, "generation \(generation) exited with \(exit) before it was ready; starting another on the last good binary once it is back", generation: generation))
            } else if let earlier = orphanedExit {
                actions.append(.log(.error, .generationExited, "generation \(generation) exited with \(exit) before ready; nothing is serving", generation: generation))
                finish(with: earlier, into: &actions)
            } else {
                actions.append(.log(.notice, .generationExited, "generation \(generation) exited with \(exit) before it was ready", generation: generation))
                finish(with: exit, into: &actions)
            }
        case .serving:
            serving = nil
            feedLife(.generationFailed(generation, reason: "exited with \(exit)"), into: &actions)
            feedLife(.generationExited(generation), into: &actions)
            if isRollingBack(binary) {
                // A release that crashes after cutover must not take the service down.
                orphanedExit = exit
                actions.append(.log(.warning, .generationExited, "generation \(generation) exited with \(exit); starting another on the last good binary once it is back", generation: generation))
            } else if let candidate {
                orphanedExit = exit
                actions.append(.log(.warning, .generationExited, "generation \(generation) exited with \(exit) while generation \(candidate) is starting; waiting for \(candidate)", generation: generation))
            } else {
                actions.append(.log(.notice, .generationExited, "generation \(generation) exited with \(exit)", generation: generation))
                finish(with: exit, into: &actions)
            }
        case let .stopping(failed):
            feedLife(.generationExited(generation), into: &actions)
            if !failed {
                actions.append(.log(.info, .generationStopped, "generation \(generation) stopped (\(exit))", generation: generation))
            } else {
                actions.append(.log(.debug, .generationStopped, "failed generation \(generation) reaped (\(exit))", generation: generation))
            }
        }
    }

    private mutating func timerFired(_ timer: Timer, into actions: inout [Action]) {
        guard let generation = timer.generation else {
            if case .trialWindow = timer { feedLife(.trialWindowEnded, into: &actions) }
            return
        }
        guard let phase = phases[generation] else { return }
        switch timer {
        case .readyDelay:
            if phase == .starting { becameReady(generation, into: &actions) }
        case .readyTimeout:
            guard phase == .starting, !shuttingDown else { return }
            candidate = nil
            let timeout = settings.readyTimeout.shortDescription
            if case .delay = settings.readiness {
                actions.append(.cancelTimer(.readyDelay(generation: generation)))
            }
            let binary = binaryLife.generations[generation]
            // Marked first, so that a rollback its failure starts does not stop it a second time.
            phases[generation] = .stopping(failed: true)
            feedLife(.generationFailed(generation, reason: "was not ready after \(timeout)"), into: &actions)
            if let serving {
                restartFailed(generation, "generation \(generation) was not ready after \(timeout); generation \(serving) keeps serving", into: &actions)
                stop(generation, signal: settings.stopSignal, failed: true, into: &actions)
                actions.append(.report(.ready(generation: serving, restartSucceeded: false)))
                runQueuedRestart(into: &actions)
            } else if isRollingBack(binary) {
                orphanedExit = orphanedExit ?? .exited(OverseerExitCode.notReady)
                stop(generation, signal: settings.stopSignal, failed: true, into: &actions)
            } else {
                let detail = orphanedExit == nil ? "" : "; nothing is serving"
                actions.append(.log(.error, .readyTimeout, "generation \(generation) was not ready after \(timeout) (--ready-timeout)\(detail); stopping it", generation: generation))
                stop(generation, signal: settings.stopSignal, failed: true, into: &actions)
                exitStatus = orphanedExit ?? .exited(OverseerExitCode.notReady)
                shuttingDown = true
                restartQueued = false
                actions.append(.report(.stopping))
            }
        case .stopTimeout:
            guard case .stopping = phase else { return }
            actions.append(.log(.warning, .stopTimeout, "generation \(generation) did not stop within \(settings.stopTimeout.shortDescription); sending SIGKILL", generation: generation))
            actions.append(.killGeneration(generation: generation))
        case .trialWindow, .trialWatchdog:
            break
        }
    }

    private mutating func restartRequested(reason: String, into actions: inout [Action]) {
        if shuttingDown {
            actions.append(.log(.info, .restartIgnored, "restart (\(reason)) ignored: overseerd is stopping"))
            return
        }
        if candidate != nil || serving == nil || binaryLife.rollback != nil {
            if !restartQueued {
                restartQueued = true
                let why = binaryLife.rollback != nil ? "a rollback is under way" : "generation \(candidate ?? 0) is still starting"
                actions.append(.log(.info, .restartQueued, "restart (\(reason)) queued: \(why)"))
            } else {
                actions.append(.log(.debug, .restartQueued, "restart (\(reason)) coalesced with the queued one"))
            }
            return
        }
        actions.append(.log(.notice, .restartStarted, "restart (\(reason)): starting generation \(nextGeneration)", generation: nextGeneration))
        startGeneration(into: &actions)
    }

    private mutating func stopRequested(_ signal: Int32, into actions: inout [Action]) {
        if !shuttingDown {
            shuttingDown = true
            restartQueued = false
            statusSource = serving ?? candidate
            actions.append(.log(.info, .stopping, "\(SignalNumber.name(signal)) received: stopping \(phases.count == 1 ? "the child" : "all \(phases.count) generations")"))
            actions.append(.report(.stopping))
        }
        for generation in liveGenerations {
            actions.append(.signalChild(generation: generation, signal: signal))
            if case .stopping = phases[generation] { continue }
            phases[generation] = .stopping(failed: false)
            actions.append(.startTimer(.stopTimeout(generation: generation), after: settings.stopTimeout))
        }
        exitIfDone(into: &actions)
    }

    /// A worker of a starting generation failed: the generation failed, as a
    /// candidate that was not ready in time does, with the worker's reason.
    private mutating func workersFailed(_ generation: Int, reason: String, exit: ProcessExit?, into actions: inout [Action]) {
        guard phases[generation] == .starting, !shuttingDown else { return }
        candidate = nil
        let binary = binaryLife.generations[generation]
        phases[generation] = .stopping(failed: true)
        feedLife(.generationFailed(generation, reason: reason), into: &actions)
        if let serving {
            restartFailed(generation, "generation \(generation): \(reason); generation \(serving) keeps serving", into: &actions)
            stop(generation, signal: settings.stopSignal, failed: true, into: &actions)
            actions.append(.report(.ready(generation: serving, restartSucceeded: false)))
            runQueuedRestart(into: &actions)
        } else if isRollingBack(binary) {
            orphanedExit = orphanedExit ?? exit ?? .exited(OverseerExitCode.notReady)
            stop(generation, signal: settings.stopSignal, failed: true, into: &actions)
        } else {
            let detail = orphanedExit == nil ? "" : "; nothing is serving"
            actions.append(.log(.error, .generationExited, "generation \(generation): \(reason)\(detail); stopping its workers", generation: generation))
            stop(generation, signal: settings.stopSignal, failed: true, into: &actions)
            exitStatus = orphanedExit ?? exit ?? .exited(OverseerExitCode.notReady)
            shuttingDown = true
            restartQueued = false
            actions.append(.report(.stopping))
        }
    }

    // MARK: - The binaries' life

    /// Feeds the binaries' machine and carries its actions over; a rollback it
    /// starts stops the candidate on the rejected binary.
    private mutating func feedLife(_ event: BinaryLife.Event, into actions: inout [Action]) {
        let wasRollingBack = binaryLife.rollback != nil
        for action in binaryLife.handle(event) {
            switch action {
            case .persist: actions.append(.persistState)
            case let .startTrialWindow(after): actions.append(.startTimer(.trialWindow, after: after))
            case .cancelTrialWindow: actions.append(.cancelTimer(.trialWindow))
            case let .startTrialWatchdog(after): actions.append(.startTimer(.trialWatchdog, after: after))
            case let .rollBack(target, bad): actions.append(.rollBack(to: target, replacing: bad))
            case let .log(line): actions.append(.log(line))
            }
        }
        // A candidate on the rejected binary must not take over; one serving it serves on
        // until the last good binary is back, and is then replaced by a restart.
        guard !wasRollingBack, let rollback = binaryLife.rollback, let candidate,
              binaryLife.generations[candidate] == rollback.bad.sha256, phases[candidate] == .starting else { return }
        self.candidate = nil
        restartFailed(candidate, "generation \(candidate) runs \(rollback.bad.sha256.prefix(12)), which is being rolled back", into: &actions)
        if let serving { actions.append(.report(.ready(generation: serving, restartSucceeded: false))) }
        if !shuttingDown { stop(candidate, signal: settings.stopSignal, failed: true, into: &actions) }
    }

    /// The rollback ended (`binaryLife` says how): something must serve the last good binary.
    private mutating func rollbackEnded(into actions: inout [Action]) {
        guard !shuttingDown else { return }
        let restored = binaryLife.installed.map { !binaryLife.rejected.contains($0.sha256) } ?? false
        if serving == nil, candidate == nil {
            if restored || nextGeneration == 1 {
                // At start with no way back, the installed binary runs rather than nothing.
                restartQueued = false
                if nextGeneration > 1 {
                    actions.append(.log(.notice, .restartStarted, "starting generation \(nextGeneration) on \(binaryLife.installed.map { String($0.sha256.prefix(12)) } ?? "the program")", generation: nextGeneration))
                }
                startGeneration(into: &actions)
            } else {
                finish(with: orphanedExit ?? .exited(OverseerExitCode.notReady), into: &actions)
            }
        } else if restored, let serving, candidate == nil, binaryLife.runsRejected(serving) {
            restartQueued = false
            actions.append(.log(.notice, .restartStarted, "restart (rolled back): starting generation \(nextGeneration)", generation: nextGeneration))
            startGeneration(into: &actions)
        } else {
            runQueuedRestart(into: &actions)
        }
    }

    /// Whether a rollback of `binary` is under way: its generation's failure waits for it, not ends overseerd.
    private func isRollingBack(_ binary: String?) -> Bool {
        binary != nil && binaryLife.rollback?.bad.sha256 == binary
    }

    // MARK: - Helpers

    private mutating func restartFailed(_ generation: Int, _ reason: String, into actions: inout [Action]) {
        lastRestart = RestartOutcome(candidate: generation, succeeded: false, failure: reason)
        actions.append(.log(.error, .restartFailed, "restart failed: \(reason)", generation: generation))
    }

    private mutating func stop(_ generation: Int, signal: Int32, failed: Bool, into actions: inout [Action]) {
        phases[generation] = .stopping(failed: failed)
        actions.append(.signalChild(generation: generation, signal: signal))
        actions.append(.startTimer(.stopTimeout(generation: generation), after: settings.stopTimeout))
    }

    private mutating func runQueuedRestart(into actions: inout [Action]) {
        guard restartQueued, !shuttingDown, serving != nil, candidate == nil, binaryLife.rollback == nil else { return }
        restartQueued = false
        actions.append(.log(.notice, .restartStarted, "queued restart: starting generation \(nextGeneration)", generation: nextGeneration))
        startGeneration(into: &actions)
    }

    /// Nothing is serving any more: stop what is left and leave with `status`.
    private mutating func finish(with status: ProcessExit, into actions: inout [Action]) {
        shuttingDown = true
        restartQueued = false
        exitStatus = status
        if phases.isEmpty {
            actions.append(.exit(status))
            return
        }
        actions.append(.report(.stopping))
        for generation in liveGenerations where !isStopping(generation) {
            stop(generation, signal: settings.stopSignal, failed: false, into: &actions)
        }
        actions.append(.log(.info, .stopping, "waiting for \(phases.count) stopping generation(s) before exiting"))
    }

    private mutating func exitIfDone(into actions: inout [Action]) {
        guard phases.isEmpty else { return }
        // Nothing ran when the stop came (a rollback was under way): the last child's end stands.
        actions.append(.exit(exitStatus ?? orphanedExit ?? .exited(0)))
    }
}

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
        /// How long a generation started on a newly installed binary must serve
        /// before that binary is trusted (`--probation`); zero turns it off.
        public var probation: Duration

        public init(readiness: ReadinessMode = .default, readyTimeout: Duration = .seconds(60),
                    stopSignal: Int32 = SIGTERM, stopTimeout: Duration = .seconds(30), probation: Duration = .zero) {
            self.readiness = readiness
            self.readyTimeout = readyTimeout
            self.stopSignal = stopSignal
            self.stopTimeout = stopTimeout
            self.probation = probation
        }

        public init(_ configuration: Configuration) {
            self.init(readiness: configuration.readiness, readyTimeout: configuration.readyTimeout,
                      stopSignal: configuration.stopSignal, stopTimeout: configuration.stopTimeout,
                      probation: configuration.upgrade?.probation ?? .zero)
        }
    }

    /// Something that happened.
    public enum Event: Equatable, Sendable {
        /// overseerd has its sockets and is to start the first child.
        case started
        /// The child of `generation` exists (its pid is known to the caller).
        case childSpawned(generation: Int)
        /// The child of `generation` could not be started; `exitCode` is what
        /// overseerd exits with when this was the first one.
        case childSpawnFailed(generation: Int, exitCode: Int32, reason: String)
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
        /// The serving `generation` runs a binary just installed by an upgrade:
        /// it is on probation for `Settings.probation`.
        case upgradeServing(generation: Int)
        /// Before `started`: the installed binary is still on probation from an
        /// earlier overseerd (one that was restarted meanwhile), so the first
        /// generation is on probation too, from its start: an exit before it is
        /// ready, or within the probation, rolls back instead of ending overseerd.
        case firstGenerationOnProbation
        /// The generation on probation pinged (WATCHDOG=1) and then stopped pinging
        /// for `--probation-watchdog`: it hangs, which fails its probation as an exit would.
        case probationWatchdogMissed(generation: Int)
    }

    /// The deadlines the machine asks for.
    public enum Timer: Hashable, Sendable {
        /// A candidate not ready by then has failed.
        case readyTimeout(generation: Int)
        /// With `--ready delay:D`: ready when this fires while the child lives.
        case readyDelay(generation: Int)
        /// A stopping child still alive then gets SIGKILL.
        case stopTimeout(generation: Int)
        /// The generation on probation has served long enough.
        case probation(generation: Int)

        public var generation: Int {
            switch self {
            case let .readyTimeout(generation), let .readyDelay(generation), let .stopTimeout(generation),
                 let .probation(generation): generation
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
        /// `generation`, on probation, failed (`reason`: how): put the previous
        /// binary back before the next `spawnChild`, and reject the one that
        /// failed. `exit` is what overseerd leaves with if the rollback fails too.
        case rollBack(generation: Int, exit: ProcessExit, reason: String)
        /// The binary `generation` runs has served its probation.
        case probationPassed(generation: Int)

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
    /// The serving generation whose newly installed binary is on probation.
    public private(set) var probation: Int?
    /// The first generation runs a binary still on probation (see `firstGenerationOnProbation`).
    private var probationAtStart = false
    /// How the last restart ended; set before its `.report(.ready(…))`.
    public private(set) var lastRestart: RestartOutcome?
    /// The generation started last (0 before the first).
    public var newestGeneration: Int { nextGeneration - 1 }

    public init(settings: Settings) {
        self.settings = settings
    }

    /// Takes over from an earlier overseerd (a re-exec): `generation` serves,
    /// nothing else runs, and the next restart starts `generation + 1`.
    public init(settings: Settings, adoptingServing generation: Int) {
        self.settings = settings
        phases[generation] = .serving
        serving = generation
        nextGeneration = generation + 1
    }

    /// Whether overseerd could hand over to a new image of itself now: one
    /// generation serving and nothing starting, stopping or queued.
    public var isSettled: Bool {
        !shuttingDown && candidate == nil && !restartQueued && serving != nil && phases.count == 1
    }

    /// Generations alive, oldest first.
    public var liveGenerations: [Int] { phases.keys.sorted() }

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
            startGeneration(into: &actions)
        case let .childSpawned(generation):
            guard phases[generation] == .starting else { break }
            actions.append(.startTimer(.readyTimeout(generation: generation), after: settings.readyTimeout))
            if case let .delay(delay) = settings.readiness {
                actions.append(.startTimer(.readyDelay(generation: generation), after: delay))
            }
        case let .childSpawnFailed(generation, exitCode, reason):
            spawnFailed(generation, exitCode: exitCode, reason: reason, into: &actions)
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
        case let .probationWatchdogMissed(generation):
            guard probation == generation, serving == generation, candidate == nil, !shuttingDown else { break }
            probation = nil
            serving = nil
            orphanedExit = .exited(OverseerExitCode.notReady)
            actions.append(.cancelTimer(.probation(generation: generation)))
            actions.append(.log(.error, .probationFailed, "generation \(generation) stopped sending WATCHDOG=1 during its probation; putting the previous binary back", generation: generation))
            stop(generation, signal: settings.stopSignal, failed: true, into: &actions)
            actions.append(.rollBack(generation: generation, exit: .exited(OverseerExitCode.notReady),
                                     reason: "stopped sending WATCHDOG=1"))
            startGeneration(into: &actions)
        case .firstGenerationOnProbation:
            if settings.probation > .zero, nextGeneration == 1 { probationAtStart = true }
        case let .upgradeServing(generation):
            guard settings.probation > .zero, generation == serving, !shuttingDown else { break }
            probation = generation
            actions.append(.log(.info, .probationStarted, "generation \(generation) runs a new binary: on probation for \(settings.probation.shortDescription)", generation: generation))
            actions.append(.startTimer(.probation(generation: generation), after: settings.probation))
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

    private mutating func spawnFailed(_ generation: Int, exitCode: Int32, reason: String, into actions: inout [Action]) {
        guard phases[generation] == .starting else { return }
        phases[generation] = nil
        candidate = nil
        if let serving {
            restartFailed(generation, "generation \(generation) could not start: \(reason); generation \(serving) keeps serving", into: &actions)
            actions.append(.report(.ready(generation: serving, restartSucceeded: false)))
            runQueuedRestart(into: &actions)
        } else if probationAtStart {
            rollBackAtStart(generation, .exited(exitCode), "could not start: \(reason)", into: &actions)
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
            if probation == old {
                // The binary on probation serves on in the new generation, which serves its own full term.
                actions.append(.cancelTimer(.probation(generation: old)))
                probation = generation
                actions.append(.startTimer(.probation(generation: generation), after: settings.probation))
            }
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
            if probationAtStart {
                probationAtStart = false
                probation = generation
                actions.append(.log(.info, .probationStarted, "generation \(generation) runs a binary still on probation: \(settings.probation.shortDescription) more", generation: generation))
                actions.append(.startTimer(.probation(generation: generation), after: settings.probation))
            }
        }
        serving = generation
        runQueuedRestart(into: &actions)
    }

    private mutating func exited(_ generation: Int, _ exit: ProcessExit, into actions: inout [Action]) {
        guard let phase = phases.removeValue(forKey: generation) else { return }
        actions.append(.cancelTimer(.readyTimeout(generation: generation)))
        // Whatever the machine thinks of its probation, no timer outlives the generation.
        if settings.probation > .zero { actions.append(.cancelTimer(.probation(generation: generation))) }
        if probation == generation, shuttingDown { probation = nil }
        if case .delay = settings.readiness {
            actions.append(.cancelTimer(.readyDelay(generation: generation)))
        }
        if case .stopping = phase {
            actions.append(.cancelTimer(.stopTimeout(generation: generation)))
        }
        if shuttingDown {
            actions.append(.log(.info, .generationStopped, "generation \(generation) exited with \(exit)", generation: generation))
            if generation == statusSource, exitStatus == nil { exitStatus = exit }
            if generation == candidate { candidate = nil }
            if generation == serving { serving = nil }
            exitIfDone(into: &actions)
            return
        }
        switch phase {
        case .starting:
            candidate = nil
            if let serving {
                restartFailed(generation, "generation \(generation) exited with \(exit) before ready; generation \(serving) keeps serving", into: &actions)
                actions.append(.report(.ready(generation: serving, restartSucceeded: false)))
                runQueuedRestart(into: &actions)
            } else if let earlier = orphanedExit {
                actions.append(.log(.error, .generationExited, "generation \(generation) exited with \(exit) before ready; nothing is serving", generation: generation))
                finish(with: earlier, into: &actions)
            } else if probationAtStart {
                rollBackAtStart(generation, exit, "exited with \(exit) before it was ready", into: &actions)
            } else {
                actions.append(.log(.notice, .generationExited, "generation \(generation) exited with \(exit) before it was ready", generation: generation))
                finish(with: exit, into: &actions)
            }
        case .serving:
            serving = nil
            if probation == generation {
                probation = nil
                if candidate == nil {
                    // A release that crashes after cutover must not take the service down.
                    orphanedExit = exit
                    actions.append(.log(.error, .probationFailed, "generation \(generation) exited with \(exit) during its probation; putting the previous binary back", generation: generation))
                    actions.append(.rollBack(generation: generation, exit: exit, reason: "exited with \(exit)"))
                    startGeneration(into: &actions)
                    return
                }
            }
            if let candidate {
                orphanedExit = exit
                actions.append(.log(.warning, .generationExited, "generation \(generation) exited with \(exit) while generation \(candidate) is starting; waiting for \(candidate)", generation: generation))
            } else {
                actions.append(.log(.notice, .generationExited, "generation \(generation) exited with \(exit)", generation: generation))
                finish(with: exit, into: &actions)
            }
        case let .stopping(failed):
            if !failed {
                actions.append(.log(.info, .generationStopped, "generation \(generation) stopped (\(exit))", generation: generation))
            } else {
                actions.append(.log(.debug, .generationStopped, "failed generation \(generation) reaped (\(exit))", generation: generation))
            }
        }
    }

    private mutating func timerFired(_ timer: Timer, into actions: inout [Action]) {
        let generation = timer.generation
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
            if let serving {
                restartFailed(generation, "generation \(generation) was not ready after \(timeout); generation \(serving) keeps serving", into: &actions)
                stop(generation, signal: settings.stopSignal, failed: true, into: &actions)
                actions.append(.report(.ready(generation: serving, restartSucceeded: false)))
                runQueuedRestart(into: &actions)
            } else if probationAtStart {
                stop(generation, signal: settings.stopSignal, failed: true, into: &actions)
                rollBackAtStart(generation, .exited(OverseerExitCode.notReady), "was not ready after \(timeout)", into: &actions)
            } else {
                let detail = orphanedExit == nil ? "" : "; nothing is serving"
                actions.append(.log(.error, .readyTimeout, "generation \(generation) was not ready after \(timeout) (--ready-timeout)\(detail); stopping it", generation: generation))
                stop(generation, signal: settings.stopSignal, failed: true, into: &actions)
                exitStatus = orphanedExit ?? .exited(OverseerExitCode.notReady)
                shuttingDown = true
                restartQueued = false
                actions.append(.report(.stopping))
            }
        case .probation:
            guard probation == generation, phase == .serving else { return }
            probation = nil
            actions.append(.probationPassed(generation: generation))
        case .stopTimeout:
            guard case .stopping = phase else { return }
            actions.append(.log(.warning, .stopTimeout, "generation \(generation) did not stop within \(settings.stopTimeout.shortDescription); sending SIGKILL", generation: generation))
            actions.append(.killGeneration(generation: generation))
        }
    }

    private mutating func restartRequested(reason: String, into actions: inout [Action]) {
        if shuttingDown {
            actions.append(.log(.info, .restartIgnored, "restart (\(reason)) ignored: overseerd is stopping"))
            return
        }
        if candidate != nil || serving == nil {
            if !restartQueued {
                restartQueued = true
                actions.append(.log(.info, .restartQueued, "restart (\(reason)) queued: generation \(candidate ?? 0) is still starting"))
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

    // MARK: - Helpers

    /// The first generation, on a binary still on probation, failed before it served: roll back once.
    private mutating func rollBackAtStart(_ generation: Int, _ exit: ProcessExit, _ what: String, into actions: inout [Action]) {
        probationAtStart = false
        orphanedExit = exit
        actions.append(.log(.error, .probationFailed, "generation \(generation) \(what), and its binary is on probation; putting the previous binary back", generation: generation))
        actions.append(.rollBack(generation: generation, exit: exit, reason: what))
        startGeneration(into: &actions)
    }

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
        guard restartQueued, !shuttingDown, serving != nil, candidate == nil else { return }
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
        actions.append(.exit(exitStatus ?? .exited(0)))
    }
}

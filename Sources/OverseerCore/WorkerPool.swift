/// `--workers N`: each generation of `Supervision` is N processes (workers),
/// one per slot, and a restart rolls the slots over to the new generation a
/// batch at a time. A pure machine around `Supervision`: it owns the slots,
/// the processes, the rolls, the replacement of crashed workers and the crash
/// rule; `Supervision` (with `BinaryLife` inside it) still owns generations,
/// restarts, the trial and the rollback, and sees a generation exactly as with
/// one child:
///
/// - spawned when its first worker is; ready when every slot has a ready worker
///   of it (the roll is done); failed (`workersFailed`) when one of its workers
///   fails before that; exited when its last worker has gone.
/// - A worker of the binary on trial that exits while serving is that
///   generation failing its trial (`generationFailed`): the rollback, then a
///   roll of every slot onto the last good binary.
///
/// Rules (each one a test in `WorkerPoolTests`):
/// - A roll starts a new worker for a slot, waits for it to be ready, then
///   stops the slot's old worker. At most `rollBatch` new workers start at
///   once, and at most N + K workers that are not stopping exist at once
///   (stopping ones drain and are not counted). With nothing ready (the first
///   start, everything crashed) every slot starts at once.
/// - A new worker that fails ends the roll: a restart of the same binary
///   first retries that slot once; then the generation fails, its workers that
///   are not yet ready stop, and each slot it took is given back to the serving
///   generation (once a rollback has put the last good binary back) before its
///   worker stops, so capacity stays.
/// - Outside a roll, a worker that exits is replaced after a delay doubling
///   from `restartDelay` to `restartMaxDelay`, reset once the slot's worker has
///   been ready for `healthyAfter`.
/// - When every slot has had a worker exit within `crashWindow` and no slot
///   has a ready worker, the serving generation is given up: overseerd then
///   exits as its last worker did (the rule of one child: the program cannot run).
///   A ready worker exiting with status 0 (recycling itself) is replaced but
///   does not count here.
public struct WorkerPool: Sendable {
    public enum Event: Equatable, Sendable {
        /// An event for `Supervision` (never `childSpawned`/`childReady`/`childExited`/`childSpawnFailed`: those come from the workers).
        case supervision(Supervision.Event)
        case workerSpawned(instance: Int, binary: String)
        case workerSpawnFailed(instance: Int, exitCode: Int32, reason: String, binary: String?)
        /// The worker said READY=1.
        case workerReady(instance: Int)
        case workerExited(instance: Int, ProcessExit)
        case timerFired(Timer)
    }

    public enum Timer: Hashable, Sendable {
        case readyTimeout(instance: Int)
        case readyDelay(instance: Int)
        case stopTimeout(instance: Int)
        /// A crashed slot's delay is over: start its worker again.
        case replace(worker: Int)
        /// The slot's worker has been ready long enough: its delay starts again from the first.
        case healthy(worker: Int)
        /// The slot's last crash is older than `crashWindow`.
        case crashWindow(worker: Int)
    }

    public enum Action: Equatable, Sendable {
        /// Start a process of `generation` for slot `worker`; answer with `workerSpawned` or `workerSpawnFailed`.
        case spawnWorker(instance: Int, generation: Int, worker: Int)
        case signalWorker(instance: Int, signal: Int32)
        /// SIGKILL to the worker and its process group.
        case killWorker(instance: Int)
        case startTimer(Timer, after: Duration)
        case cancelTimer(Timer)
        /// What `Supervision` asked for, other than starting or signalling a generation.
        case supervision(Supervision.Action)
    }

    public enum ProcessState: Equatable, Sendable { case starting, ready, stopping }

    /// One worker process.
    public struct Process: Equatable, Sendable {
        public let instance: Int
        public let generation: Int
        public let worker: Int
        public var state: ProcessState
        /// The program's SHA-256, once it was started.
        public var binary: String?
    }

    /// One of the N places a worker fills.
    public struct Slot: Equatable, Sendable {
        public let worker: Int
        /// The worker that fills the slot (ready or starting).
        public var current: Int?
        /// A worker started to take the slot over (a roll, a replacement).
        public var incoming: Int?
        /// Workers started again in this slot after one exited.
        public var restarts = 0
        var delay: Duration
        var waitingToReplace = false
        /// Once the delay is over, a restart (the serving generation runs a rejected binary).
        var restartWhenDue = false
        /// The slot's worker exited within `crashWindow`.
        var recentCrash: ProcessExit?
    }

    struct Roll: Equatable, Sendable {
        let generation: Int
        var pending: [Int]
        var retried: Set<Int> = []
    }

    public let settings: WorkerSettings
    public private(set) var supervision: Supervision
    public private(set) var slots: [Slot]
    public private(set) var processes: [Int: Process] = [:]
    private var roll: Roll?
    private var nextInstance = 1
    /// The generations `Supervision` heard `childSpawned` for.
    private var announced: Set<Int> = []
    /// Set once every slot crashed: the serving generation's end is told once its workers are gone.
    private var givenUp: (generation: Int, exit: ProcessExit)?
    /// Generations whose last worker has gone, and how it went: `Supervision` hears it once the generation is stopping.
    private var emptied: [Int: ProcessExit] = [:]
    /// What `Supervision` was fed and answered in the last `handle` (for the metrics).
    public private(set) var fed: [(event: Supervision.Event, actions: [Supervision.Action])] = []

    public init(settings: WorkerSettings, supervision: Supervision) {
        self.settings = settings
        self.supervision = supervision
        slots = (0 ..< settings.count).map { Slot(worker: $0, delay: settings.restartDelay) }
    }

    /// The generation a roll is moving the slots to, if one is.
    public var rollingTo: Int? { roll?.generation }

    /// Workers in `state`.
    public func count(_ state: ProcessState) -> Int { processes.values.count { $0.state == state } }

    /// The workers of `generation`, by slot.
    public func workers(of generation: Int) -> [Process] {
        processes.values.filter { $0.generation == generation }.sorted { $0.worker < $1.worker }
    }

    public mutating func handle(_ event: Event) -> [Action] {
        var actions: [Action] = []
        fed = []
        switch event {
        case let .supervision(event):
            feed(event, into: &actions)
        case let .workerSpawned(instance, binary):
            spawned(instance, binary: binary, into: &actions)
        case let .workerSpawnFailed(instance, exitCode, reason, binary):
            spawnFailed(instance, exitCode: exitCode, reason: reason, binary: binary, into: &actions)
        case let .workerReady(instance):
            becameReady(instance, into: &actions)
        case let .workerExited(instance, exit):
            exited(instance, exit, into: &actions)
        case let .timerFired(timer):
            timerFired(timer, into: &actions)
        }
        converge(into: &actions)
        return actions
    }

    // MARK: - Supervision's side

    private mutating func feed(_ event: Supervision.Event, into actions: inout [Action]) {
        let answer = supervision.handle(event)
        fed.append((event, answer))
        for action in answer {
            switch action {
            case let .spawnChild(generation):
                begin(generation, into: &actions)
            case let .signalChild(generation, signal):
                signalWorkers(of: generation, signal, into: &actions)
            case let .killGeneration(generation):
                for process in workers(of: generation) { actions.append(.killWorker(instance: process.instance)) }
            case .startTimer(.readyTimeout, _), .startTimer(.readyDelay, _), .cancelTimer(.readyTimeout), .cancelTimer(.readyDelay):
                // Readiness is timed per worker here.
                break
            default:
                actions.append(.supervision(action))
            }
        }
    }

    /// A new generation: a roll onto it, emptiest slots first.
    private mutating func begin(_ generation: Int, into actions: inout [Action]) {
        let order = slots.sorted { rank($0) < rank($1) || (rank($0) == rank($1) && $0.worker < $1.worker) }
        roll = Roll(generation: generation, pending: order.map(\.worker))
        if supervision.serving != nil {
            actions.append(.supervision(.log(.info, .rollStarted, "rolling \(settings.count) workers over to generation \(generation), \(settings.rollBatch) at a time", generation: generation)))
        }
    }

    private func rank(_ slot: Slot) -> Int {
        guard let current = slot.current, let process = processes[current] else { return 0 }
        return process.state == .ready ? 2 : 1
    }

    private mutating func signalWorkers(of generation: Int, _ signal: Int32, into actions: inout [Action]) {
        let stopping = supervision.isStopping(generation)
        // A failed generation gives its slots back one by one: its ready workers serve until replaced.
        let givingBack = stopping && !supervision.isShuttingDown && (supervision.serving.map { $0 < generation } ?? false)
        for process in workers(of: generation) {
            if givingBack, process.state == .ready { continue }
            // Asked once already; a stop request (SIGINT after SIGTERM, say) is passed on again.
            if process.state == .stopping, !supervision.isShuttingDown { continue }
            actions.append(.signalWorker(instance: process.instance, signal: signal))
            if stopping, process.state != .stopping { markStopping(process.instance, into: &actions) }
        }
    }

    // MARK: - Workers' side

    private mutating func spawned(_ instance: Int, binary: String, into actions: inout [Action]) {
        guard let process = processes[instance], process.state == .starting else { return }
        processes[instance]?.binary = binary
        let generation = process.generation
        if !announced.contains(generation), supervision.candidate == generation {
            announced.insert(generation)
            feed(.childSpawned(generation: generation, binary: binary), into: &actions)
        }
        actions.append(.startTimer(.readyTimeout(instance: instance), after: supervision.settings.readyTimeout))
        if case let .delay(delay) = supervision.settings.readiness {
            actions.append(.startTimer(.readyDelay(instance: instance), after: delay))
        }
        let others = workers(of: generation).compactMap(\.binary).filter { $0 != binary }
        if let other = others.first, generation == roll?.generation {
            // The program changed during the roll: one generation runs one binary.
            failed(instance, "runs \(binary.prefix(12)), not \(other.prefix(12)) as the rest of its generation (the program changed during the roll)",
                   exit: nil, into: &actions)
        }
    }

    private mutating func spawnFailed(_ instance: Int, exitCode: Int32, reason: String, binary: String?, into actions: inout [Action]) {
        guard let process = processes.removeValue(forKey: instance) else { return }
        let generation = process.generation
        clearSlot(of: process)
        if workers(of: generation).isEmpty { emptied[generation] = .exited(exitCode) }
        if !announced.contains(generation), workers(of: generation).isEmpty, supervision.candidate == generation {
            // Nothing of it runs: exactly one child's failure to start.
            roll = nil
            feed(.childSpawnFailed(generation: generation, exitCode: exitCode, reason: reason, binary: binary), into: &actions)
            return
        }
        if !announced.contains(generation), let binary, supervision.candidate == generation {
            announced.insert(generation)
            feed(.childSpawned(generation: generation, binary: binary), into: &actions)
        }
        workerFailed(process, "worker \(process.worker) could not start: \(reason)", exit: .exited(exitCode), into: &actions)
    }

    private mutating func becameReady(_ instance: Int, into actions: inout [Action]) {
        guard let process = processes[instance], process.state == .starting, !supervision.isShuttingDown else { return }
        processes[instance]?.state = .ready
        actions.append(.cancelTimer(.readyTimeout(instance: instance)))
        if case .delay = supervision.settings.readiness { actions.append(.cancelTimer(.readyDelay(instance: instance))) }
        let worker = process.worker
        if slots[worker].incoming == instance {
            slots[worker].incoming = nil
            if let old = slots[worker].current, old != instance, processes[old] != nil { stop(old, into: &actions) }
            slots[worker].current = instance
        }
        actions.append(.startTimer(.healthy(worker: worker), after: settings.healthyAfter))
        actions.append(.supervision(.log(.info, .workerReady, "worker \(worker) of generation \(process.generation) is ready", generation: process.generation)))
        if process.generation == roll?.generation, roll?.pending.isEmpty == true,
           slots.allSatisfy({ slot in slot.current.flatMap { processes[$0] }.map { $0.generation == process.generation && $0.state == .ready } ?? false }) {
            roll = nil
            feed(.childReady(generation: process.generation), into: &actions)
        }
    }

    private mutating func exited(_ instance: Int, _ exit: ProcessExit, into actions: inout [Action]) {
        guard let process = processes.removeValue(forKey: instance) else { return }
        for timer in [Timer.readyTimeout(instance: instance), .readyDelay(instance: instance), .stopTimeout(instance: instance)] {
            actions.append(.cancelTimer(timer))
        }
        let generation = process.generation
        clearSlot(of: process)
        switch process.state {
        case .stopping:
            actions.append(.supervision(.log(.debug, .workerStopped, "worker \(process.worker) of generation \(generation) stopped (\(exit))", generation: generation)))
        case .starting:
            workerFailed(process, "worker \(process.worker) exited with \(exit) before it was ready", exit: exit, into: &actions)
        case .ready:
            actions.append(.supervision(.log(.warning, .workerExited, "worker \(process.worker) of generation \(generation) exited with \(exit)", generation: generation)))
            if generation == roll?.generation, supervision.candidate == generation {
                feed(.workersFailed(generation: generation, reason: "worker \(process.worker) exited with \(exit)", exit: exit), into: &actions)
            } else {
                if generation == supervision.serving, supervision.binaryLife.trialGenerations.contains(generation) {
                    // Any worker of the binary on trial failing is the trial failing.
                    feed(.binaryLife(.generationFailed(generation, reason: "worker \(process.worker) exited with \(exit)")), into: &actions)
                }
                // Status 0 after serving is a worker recycling itself (gunicorn's max_requests), not a program that cannot run.
                crashed(process.worker, exit, countsTowardGivingUp: exit != .exited(0), into: &actions)
            }
        }
        if workers(of: generation).isEmpty { emptied[generation] = exit }
    }

    /// Tells `Supervision` of the generations whose workers have all gone and
    /// that it was stopping (or that was given up): their end, once.
    private mutating func reportEnds(into actions: inout [Action]) {
        for generation in emptied.keys where !supervision.liveGenerations.contains(generation) || !workers(of: generation).isEmpty {
            emptied[generation] = nil
        }
        // A generation stopped before any worker of it started (a roll waiting for its turn) has ended too.
        for generation in supervision.liveGenerations where workers(of: generation).isEmpty {
            let gaveUp = givenUp?.generation == generation
            guard supervision.isStopping(generation) || gaveUp else { continue }
            let exit = gaveUp ? givenUp!.exit : emptied.removeValue(forKey: generation) ?? .exited(0)
            announced.remove(generation)
            feed(.childExited(generation: generation, exit), into: &actions)
        }
    }

    /// A worker not yet ready failed (`reason` says how).
    private mutating func workerFailed(_ process: Process, _ reason: String, exit: ProcessExit?, into actions: inout [Action]) {
        let generation = process.generation
        if generation == roll?.generation, supervision.candidate == generation {
            let sameBinary = process.binary != nil && supervision.serving.flatMap { supervision.binaryLife.generations[$0] } == process.binary
            if sameBinary, roll?.retried.contains(process.worker) == false {
                roll?.retried.insert(process.worker)
                roll?.pending.insert(process.worker, at: 0)
                actions.append(.supervision(.log(.warning, .workerExited, "\(reason); starting it once more", generation: generation)))
                return
            }
            feed(.workersFailed(generation: generation, reason: reason, exit: exit), into: &actions)
        } else if generation == supervision.serving || supervision.liveGenerations.contains(generation) {
            actions.append(.supervision(.log(.warning, .workerExited, "\(reason) (generation \(generation))", generation: generation)))
            // Only the serving generation's worker leaves its slot empty: one of a failed roll
            // (the rest of its batch) never took the slot, whose worker still serves.
            if let exit, generation == supervision.serving { crashed(process.worker, exit, into: &actions) }
        }
    }

    /// A slot's worker went without being asked: count it, apply the crash rule, schedule its replacement.
    private mutating func crashed(_ worker: Int, _ exit: ProcessExit, countsTowardGivingUp: Bool = true, into actions: inout [Action]) {
        slots[worker].restarts += 1
        actions.append(.cancelTimer(.healthy(worker: worker)))
        if countsTowardGivingUp {
            slots[worker].recentCrash = exit
            actions.append(.startTimer(.crashWindow(worker: worker), after: settings.crashWindow))
        }
        guard givenUp == nil, !supervision.isShuttingDown else { return }
        if countsTowardGivingUp, slots.allSatisfy({ $0.recentCrash != nil }), count(.ready) == 0, let serving = supervision.serving {
            givenUp = (serving, exit)
            actions.append(.supervision(.log(.error, .workersCrashed, "every worker exited within \(settings.crashWindow.shortDescription) (--worker-crash-window) and none is ready: giving up the generation", generation: supervision.serving)))
            for slot in slots where slot.waitingToReplace {
                slots[slot.worker].waitingToReplace = false
                actions.append(.cancelTimer(.replace(worker: slot.worker)))
            }
            for process in workers(of: serving) where process.state != .stopping { stop(process.instance, into: &actions) }
            if workers(of: serving).isEmpty { emptied[serving] = exit }
            return
        }
        if let roll, supervision.candidate == roll.generation {
            // The roll fills it next.
            if slots[worker].incoming == nil, slots[worker].current == nil {
                self.roll?.pending.removeAll { $0 == worker }
                self.roll?.pending.insert(worker, at: 0)
            }
            return
        }
        delayReplacement(of: worker, into: &actions)
    }

    private mutating func delayReplacement(of worker: Int, into actions: inout [Action]) {
        slots[worker].waitingToReplace = true
        actions.append(.supervision(.log(.notice, .workerRestartScheduled, "worker \(worker) starts again in \(slots[worker].delay.shortDescription)")))
        actions.append(.startTimer(.replace(worker: worker), after: slots[worker].delay))
        slots[worker].delay = min(slots[worker].delay * 2, settings.restartMaxDelay)
    }

    private mutating func timerFired(_ timer: Timer, into actions: inout [Action]) {
        switch timer {
        case let .readyTimeout(instance):
            guard let process = processes[instance], process.state == .starting else { return }
            markStopping(instance, into: &actions)
            actions.append(.signalWorker(instance: instance, signal: supervision.settings.stopSignal))
            failed(instance, "was not ready after \(supervision.settings.readyTimeout.shortDescription)", exit: .exited(OverseerExitCode.notReady),
                   into: &actions, alreadyStopping: true)
        case let .readyDelay(instance):
            becameReady(instance, into: &actions)
        case let .stopTimeout(instance):
            guard let process = processes[instance] else { return }
            actions.append(.supervision(.log(.warning, .stopTimeout, "worker \(process.worker) of generation \(process.generation) did not stop within \(supervision.settings.stopTimeout.shortDescription); sending SIGKILL", generation: process.generation)))
            actions.append(.killWorker(instance: instance))
        case let .replace(worker):
            slots[worker].waitingToReplace = false
        case let .healthy(worker):
            slots[worker].delay = settings.restartDelay
        case let .crashWindow(worker):
            slots[worker].recentCrash = nil
        }
    }

    /// A starting worker is out: stopped here, then failed as if it had exited.
    private mutating func failed(_ instance: Int, _ reason: String, exit: ProcessExit?, into actions: inout [Action], alreadyStopping: Bool = false) {
        guard let process = processes[instance] else { return }
        if !alreadyStopping { stop(instance, into: &actions) }
        clearSlot(of: process)
        workerFailed(process, "worker \(process.worker) \(reason)", exit: exit, into: &actions)
    }

    // MARK: - Filling the slots

    /// Starts what the slots lack, within the limits.
    private mutating func converge(into actions: inout [Action]) {
        reportEnds(into: &actions)
        if let givenUp, !supervision.liveGenerations.contains(givenUp.generation) { self.givenUp = nil }
        if let roll, supervision.candidate != roll.generation { self.roll = nil }
        guard !supervision.isShuttingDown, supervision.binaryLife.rollback == nil else { return }
        if var roll {
            while let worker = roll.pending.first, canStart() {
                roll.pending.removeFirst()
                launch(roll.generation, worker, into: &actions)
            }
            self.roll = roll
        } else if let serving = supervision.serving, givenUp == nil {
            let rejected = supervision.binaryLife.runsRejected(serving)
            for slot in slots where slot.incoming == nil && !slot.waitingToReplace && needsWorker(slot, serving) {
                if rejected {
                    // Another worker would run what is in place now, not the serving generation's binary:
                    // a restart onto it instead, after the slot's delay.
                    if slot.restartWhenDue {
                        slots[slot.worker].restartWhenDue = false
                        feed(.restartRequested(reason: "worker \(slot.worker) is missing and generation \(serving) runs a rejected binary"), into: &actions)
                        return converge(into: &actions)
                    }
                    slots[slot.worker].restartWhenDue = true
                    delayReplacement(of: slot.worker, into: &actions)
                } else if canStart() {
                    launch(serving, slot.worker, into: &actions)
                }
            }
        }
    }

    private func needsWorker(_ slot: Slot, _ serving: Int) -> Bool {
        guard let current = slot.current, let process = processes[current] else { return true }
        return process.state == .stopping || process.generation != serving
    }

    /// At most `rollBatch` starting and N + K not stopping; anything when nothing is ready.
    private func canStart() -> Bool {
        let starting = count(.starting)
        if count(.ready) == 0 { return true }
        return starting < settings.rollBatch && starting + count(.ready) < settings.count + settings.rollBatch
    }

    private mutating func launch(_ generation: Int, _ worker: Int, into actions: inout [Action]) {
        let instance = nextInstance
        nextInstance += 1
        processes[instance] = Process(instance: instance, generation: generation, worker: worker, state: .starting)
        if let previous = slots[worker].incoming, processes[previous] != nil { stop(previous, into: &actions) }
        slots[worker].incoming = instance
        if slots[worker].current.flatMap({ processes[$0] }) == nil { slots[worker].current = nil }
        actions.append(.spawnWorker(instance: instance, generation: generation, worker: worker))
    }

    private mutating func stop(_ instance: Int, into actions: inout [Action]) {
        guard let process = processes[instance], process.state != .stopping else { return }
        actions.append(.signalWorker(instance: instance, signal: supervision.settings.stopSignal))
        markStopping(instance, into: &actions)
    }

    private mutating func markStopping(_ instance: Int, into actions: inout [Action]) {
        guard let process = processes[instance] else { return }
        if process.state == .starting {
            actions.append(.cancelTimer(.readyTimeout(instance: instance)))
            if case .delay = supervision.settings.readiness { actions.append(.cancelTimer(.readyDelay(instance: instance))) }
        }
        processes[instance]?.state = .stopping
        clearSlot(of: process)
        actions.append(.startTimer(.stopTimeout(instance: instance), after: supervision.settings.stopTimeout))
    }

    private mutating func clearSlot(of process: Process) {
        if slots[process.worker].incoming == process.instance { slots[process.worker].incoming = nil }
        if slots[process.worker].current == process.instance { slots[process.worker].current = nil }
    }
}

extension WorkerPool {
    /// A pool whose slots are already filled (`WorkerPool+Adoption`): the
    /// processes and slots as given, instances numbered on after the highest.
    init(settings: WorkerSettings, supervision: Supervision, filled slots: [Slot], processes: [Int: Process]) {
        self.init(settings: settings, supervision: supervision)
        self.slots = slots
        self.processes = processes
        nextInstance = (processes.keys.max() ?? 0) + 1
        announced = Set(processes.values.map(\.generation))
    }
}

import Glibc
@testable import OverseerCore

/// Carries out a `WorkerPool`'s actions on pretend processes: a spawn is
/// answered at once (`workerSpawned` with the program in place, or a failure
/// when `spawnFails`), timers are kept until a test fires them, a SIGKILL ends
/// a worker. Workers exit and say READY=1 only when a test says so.
struct PoolWorld {
    var pool: WorkerPool
    /// The program file's hash: what a spawned worker runs.
    var program = "A"
    var spawnFails = false
    var timers: [WorkerPool.Timer: Duration] = [:]
    var supervisionTimers: [Supervision.Timer: Duration] = [:]
    /// Workers alive (the pool's view may be ahead: a stopping one is alive until it exits).
    var alive: Set<Int> = []
    /// Workers that got the stop signal.
    var asked: Set<Int> = []
    var exited: ProcessExit?
    var reports: [Supervision.ServiceState] = []
    var logs: [LogLine] = []
    var rollbacks: [(to: BinaryLife.Release, replacing: BinaryLife.Release)] = []
    /// Every action, in order.
    var trace: [WorkerPool.Action] = []
    /// The most workers not asked to stop seen alive at once.
    var mostActive = 0

    init(workers: Int, batch: Int = 1, settings: Supervision.Settings = .init(readiness: .notify),
         record: BinaryLife.Record = .init(), crashWindow: Duration = .seconds(30)) {
        let workerSettings = WorkerSettings(count: workers, rollBatch: batch, crashWindow: crashWindow)
        pool = WorkerPool(settings: workerSettings, supervision: Supervision(settings: settings, record: record))
    }

    mutating func send(_ event: WorkerPool.Event) {
        var queue = [event]
        while !queue.isEmpty {
            let next = queue.removeFirst()
            for action in pool.handle(next) {
                trace.append(action)
                switch action {
                case let .spawnWorker(instance, _, _):
                    if spawnFails {
                        queue.append(.workerSpawnFailed(instance: instance, exitCode: 127, reason: "cannot execute", binary: program))
                    } else {
                        alive.insert(instance)
                        queue.append(.workerSpawned(instance: instance, binary: program))
                    }
                case let .signalWorker(instance, signal):
                    if signal == pool.supervision.settings.stopSignal || signal == SIGINT { asked.insert(instance) }
                case let .killWorker(instance):
                    if alive.remove(instance) != nil { queue.append(.workerExited(instance: instance, .killed(signal: SIGKILL))) }
                case let .startTimer(timer, after):
                    timers[timer] = after
                case let .cancelTimer(timer):
                    timers[timer] = nil
                case let .supervision(action):
                    switch action {
                    case let .startTimer(timer, after): supervisionTimers[timer] = after
                    case let .cancelTimer(timer): supervisionTimers[timer] = nil
                    case let .report(state): reports.append(state)
                    case let .log(line): logs.append(line)
                    case let .exit(status): exited = status
                    case let .rollBack(target, bad): rollbacks.append((target, bad))
                    case .persistState, .spawnChild, .signalChild, .killGeneration: break
                    }
                }
            }
            let active = alive.subtracting(asked).count
            mostActive = max(mostActive, active)
        }
    }

    mutating func supervision(_ event: Supervision.Event) { send(.supervision(event)) }

    /// Every worker starting says READY=1.
    mutating func allReady() {
        for process in pool.processes.values.sorted(by: { $0.instance < $1.instance }) where process.state == .starting && alive.contains(process.instance) {
            send(.workerReady(instance: process.instance))
        }
    }

    /// Readies workers one at a time until nothing is starting (a roll's batches).
    mutating func readyUntilSettled(limit: Int = 200) {
        var steps = 0
        while let next = pool.processes.values.filter({ $0.state == .starting && alive.contains($0.instance) }).min(by: { $0.instance < $1.instance }),
              steps < limit {
            send(.workerReady(instance: next.instance))
            steps += 1
        }
    }

    /// Every worker asked to stop exits.
    mutating func stoppedOnesExit() {
        for instance in asked.sorted() where alive.contains(instance) {
            alive.remove(instance)
            send(.workerExited(instance: instance, .exited(0)))
        }
    }

    /// A worker exits on its own.
    mutating func crash(_ instance: Int, _ exit: ProcessExit = .exited(3)) {
        guard alive.remove(instance) != nil else { return }
        send(.workerExited(instance: instance, exit))
    }

    mutating func fire(_ timer: WorkerPool.Timer) {
        guard timers.removeValue(forKey: timer) != nil else { return }
        send(.timerFired(timer))
    }

    mutating func fire(_ timer: Supervision.Timer) {
        guard supervisionTimers.removeValue(forKey: timer) != nil else { return }
        if case .trialWatchdog = timer {
            supervision(.binaryLife(.trialWatchdogChecked(stale: [])))
        } else {
            supervision(.timerFired(timer))
        }
    }

    /// The slots' workers: (generation, state) by slot.
    var slotView: [String] {
        pool.slots.map { slot in
            guard let current = slot.current, let process = pool.processes[current] else { return "-" }
            return "\(process.generation)\(process.state == .ready ? "r" : "s")"
        }
    }

    var readyCount: Int { pool.count(.ready) }

    func spawns(of generation: Int) -> [Int] {
        trace.compactMap { if case let .spawnWorker(_, g, worker) = $0, g == generation { return worker } else { return nil } }
    }

    func logged(_ event: DaemonEvent) -> Bool { logs.contains { $0.event == event } }
}

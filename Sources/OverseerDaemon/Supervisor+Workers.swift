import Glibc
import OverseerCore
import OverseerProtocol
import OverseerSystem

/// `--workers N` (N > 1): the daemon's side of `WorkerPool`. Each worker is a
/// child kept under its own instance number (`children[instance]`), spawned by
/// `spawn(_:worker:)` with the same listening fds as every other worker (one
/// shared file description per socket: the kernel spreads accepts), its own
/// notify socket, `OVERSEER_WORKER` and `OVERSEER_WORKERS`.
extension Supervisor {
    func handleWorkers(_ event: WorkerPool.Event) {
        guard var pool = workerPool else { return }
        let actions = pool.handle(event)
        workerPool = pool
        supervision = pool.supervision
        // Before the actions: new UDP flows go to a new serving generation before any line says it serves.
        followServingWithUDPFlows()
        for (fed, answer) in pool.fed {
            restartMetrics.observe(fed, actions: answer, restartQueued: supervision.restartQueued, now: MonotonicTimer.now)
        }
        // Ready by READY=1 or by `--ready delay:`: `status` says since when.
        for (instance, process) in pool.processes where process.state == .ready && children[instance]?.readyAt == nil {
            children[instance]?.readyAt = MonotonicTimer.now
        }
        for action in actions { perform(action) }
    }

    func perform(_ action: WorkerPool.Action) {
        switch action {
        case let .spawnWorker(instance, generation, worker):
            spawn(generation, worker: (instance, worker))
        case let .signalWorker(instance, signal):
            guard let child = children[instance] else { return }
            logger.log(.debug, .signalForwarded, "sending \(SignalNumber.name(signal)) to worker \(child.worker ?? 0) of generation \(child.generation) (pid \(child.process.pid))", generation: child.generation, pid: child.process.pid)
            child.process.signal(signal)
            // A stopped (SIGSTOP) worker could not act on a stop signal: wake it, as systemd does.
            if SignalNumber.stopping.contains(signal) || signal == configuration.stopSignal { child.process.signal(SIGCONT) }
        case let .killWorker(instance):
            guard let child = children[instance] else { return }
            child.process.signal(SIGKILL)
            child.process.signalProcessGroup(SIGKILL)
        case let .startTimer(timer, after):
            reactor.cancel(workerDeadlines[timer])
            workerDeadlines[timer] = reactor.schedule(after: after) { [unowned self] in
                workerDeadlines[timer] = nil
                feedWorker(.timerFired(timer))
            }
        case let .cancelTimer(timer):
            reactor.cancel(workerDeadlines.removeValue(forKey: timer))
        case let .supervision(action):
            perform(action)
        }
    }

    /// A worker was reaped (`reap`): the pool hears it with its pid and binary known to the lines it logs.
    func workerExited(_ instance: Int, _ child: Child, _ exit: ProcessExit) {
        justReaped = (child.generation, child.process.pid, child.binaryID)
        feedWorker(.workerExited(instance: instance, exit))
        justReaped = nil
    }

    /// The processes of `generation`: its one child, or with `--workers` its workers by number.
    func processes(of generation: Int) -> [Child] {
        guard workerPool != nil || configuration.workers.count > 1 else { return children[generation].map { [$0] } ?? [] }
        return children.values.filter { $0.generation == generation && $0.worker != nil }.sorted { ($0.worker ?? 0, $0.startedAt) < ($1.worker ?? 0, $1.startedAt) }
    }

    /// `--watchdog relay`: the last ping of `generation`'s child, or with
    /// `--workers` the oldest of its ready workers' (nil if one never pinged).
    func relayedPing(of generation: Int) -> Int64? {
        guard let pool = workerPool else { return representative(of: generation)?.lastWatchdog }
        let ready = pool.workers(of: generation).filter { $0.state == .ready }.compactMap { children[$0.instance] }
        return ready.isEmpty ? nil : WatchdogHealth.leastRecentPing(ready.map(\.lastWatchdog))
    }

    /// The process that stands for `generation` (its child; with `--workers` its first ready worker, else its first).
    func representative(of generation: Int) -> Child? {
        guard workerPool != nil || configuration.workers.count > 1 else { return children[generation] }
        let all = processes(of: generation)
        return all.first { $0.readyAt != nil } ?? all.first
    }
}

extension Supervisor {
    /// The generations with a process alive, oldest first.
    var generationsAlive: [Int] {
        workerPool == nil && configuration.workers.count == 1 ? children.keys.sorted() : Set(children.values.map(\.generation)).sorted()
    }

    /// `status`: one line per slot (worker, pid, generation, binary, ready since, restarts), and the workers stopping.
    func workerStatusLines() -> [String] {
        guard let pool = workerPool else { return [] }
        var lines = ["workers: \(pool.count(.ready)) ready, \(pool.count(.starting)) starting, \(pool.count(.stopping)) stopping of \(pool.settings.count)\(pool.rollingTo.map { ", rolling to generation \($0)" } ?? "")"]
        for slot in pool.slots {
            var line = "worker \(slot.worker): "
            if let child = slot.current.flatMap({ children[$0] }) {
                line += "pid \(child.process.pid), generation \(child.generation), binary \(child.binaryID.prefix(12)), "
                line += child.readyAt.map { "ready for \(Duration.seconds((MonotonicTimer.now - $0) / 1_000_000_000).shortDescription)" } ?? "starting"
            } else {
                line += "none"
            }
            if let incoming = slot.incoming.flatMap({ children[$0] }) { line += "; starting pid \(incoming.process.pid) of generation \(incoming.generation)" }
            line += ", restarts \(slot.restarts)"
            lines.append(line)
        }
        return lines
    }

    /// `status --json`: the slots, as `workerStatusLines` gives them.
    func workerStatusJSON() -> JSONText? {
        guard let pool = workerPool else { return nil }
        return .array(pool.slots.map { slot in
            let child = slot.current.flatMap { children[$0] }
            return .object([
                ("worker", .integer(Int64(slot.worker))),
                ("pid", child.map { .integer(Int64($0.process.pid)) } ?? .null),
                ("generation", child.map { .integer(Int64($0.generation)) } ?? .null),
                ("binary_id", child.map { .string($0.binaryID) } ?? .null),
                ("state", .string(slot.current.flatMap { pool.processes[$0] }.map { "\($0.state)" } ?? "none")),
                ("ready_seconds", child?.readyAt.map { .integer((MonotonicTimer.now - $0) / 1_000_000_000) } ?? .null),
                ("restarts", .integer(Int64(slot.restarts))),
            ])
        })
    }
}

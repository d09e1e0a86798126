import Glibc
@testable import OverseerCore
import Testing

/// Seeded random scenarios for `--workers N` (`WorkerPool` around
/// `Supervision` and `BinaryLife`): N from 2 to 5, a batch from 1 to N;
/// workers that fail readiness or crash on their own, restarts and upgrades
/// (good releases, ones whose workers never get ready, ones whose workers
/// crash after serving) asked for at any step, during rolls too, rollbacks
/// ending at any later step, overseerd stopped and started again (from
/// the record its state directory keeps), and overseerd re-executed (its
/// workers adopted by the new image, or the re-exec refused during a roll).
///
/// Invariants, checked after every step:
/// 1. Never more than N + K workers that are not stopping.
/// 2. Once a generation served, the ready workers never drop in a step where
///    no worker crashed on its own and no stop deadline fired: a worker is
///    stopped only once a ready one has taken its slot.
/// 3. No worker starts while a rollback is putting the last good binary back.
/// 4. The workers of one generation (not stopping) all run one binary.
/// 5. At the end, with everything left to settle: every slot has a ready
///    worker of the serving generation, on the binary in place, not rejected
///    and not a bad release.
/// 6. Every rollback puts back a binary that passed its probation (or the first one).
/// 7. No worker starts on a rejected binary.
/// 8. A slot is scheduled to start again only when its worker of the serving
///    generation is not ready (the rest of a failed batch is no crash).
///
/// Planted bugs it catches (checked by hand, seed 1 each): a batch limit ignored
/// (invariant 1), workers started while a rollback moves files (invariants 4
/// and 7), a slot's old worker stopped when its new one starts rather than
/// when it is ready (invariant 2), and (red team) the rest of a failed roll's
/// batch counted as crashes of the slots it was to take (invariant 8, seed 1).
///
/// `OVERSEERD_WORKER_SIMULATION_SEED=N` replays seed N with its trace
/// (`OVERSEERD_WORKER_SIMULATION_ACTIONS=1` adds every action).
@Suite struct WorkerPoolSimulationTests {
    enum Behaviour { case good, neverReady, crashesAfterReady }

    struct Scenario {
        var rng: SplitMix64
        var world: PoolWorld
        let workers: Int
        let batch: Int
        var behaviours: [String: Behaviour] = ["A": .good]
        var releases = 0
        var everServed = false
        var trace: [String] = []
        var failures: [String] = []
        var restartsOfOverseerd = 0
        var reexecs = 0
        /// Binaries that passed a probation.
        var proven: Set<String> = ["A"]

        init(seed: UInt64) {
            rng = SplitMix64(seed: seed)
            workers = Int.random(in: 2 ... 5, using: &rng)
            batch = Int.random(in: 1 ... workers, using: &rng)
            world = Self.start(workers: workers, batch: batch, record: .init(), program: "A")
        }

        static func start(workers: Int, batch: Int, record: BinaryLife.Record, program: String) -> PoolWorld {
            var world = PoolWorld(workers: workers, batch: batch,
                                  settings: .init(readiness: .notify, probation: .seconds(10)), record: record)
            world.program = program
            world.supervision(.binaryLife(.started(identified: program)))
            world.supervision(.started)
            if world.pool.supervision.binaryLife.rollback != nil {
                // A rejected binary found in place: put back before the first start (as the daemon does, off the loop).
                world.program = world.pool.supervision.binaryLife.rollback!.target.sha256
                world.supervision(.binaryLife(.rollbackFinished(restored: world.program, failure: nil)))
            }
            return world
        }

        mutating func check(_ condition: Bool, _ message: String) {
            if !condition { failures.append(message) }
        }

        func behaviour(_ process: WorkerPool.Process) -> Behaviour { process.binary.flatMap { behaviours[$0] } ?? .good }

        mutating func step() {
            let pool = world.pool
            let readyBefore = world.readyCount
            let rollingBackBefore = pool.supervision.binaryLife.rollback != nil
            let traceBefore = world.trace.count
            var excused = false
            let starting = pool.processes.values.filter { $0.state == .starting && world.alive.contains($0.instance) }.sorted { $0.instance < $1.instance }
            let ready = pool.processes.values.filter { $0.state == .ready }.sorted { $0.instance < $1.instance }
            switch Int.random(in: 0 ..< 100, using: &rng) {
            case 0 ..< 30 where !starting.isEmpty:
                let process = starting.randomElement(using: &rng)!
                if behaviour(process) == .neverReady || Int.random(in: 0 ..< 12, using: &rng) == 0 {
                    trace.append("worker \(process.instance) (\(process.generation)/\(process.worker)) exits before ready")
                    world.crash(process.instance, .exited(3))
                } else {
                    trace.append("worker \(process.instance) (\(process.generation)/\(process.worker)) ready")
                    world.send(.workerReady(instance: process.instance))
                }
            case 30 ..< 40 where !ready.isEmpty:
                let process = ready.randomElement(using: &rng)!
                if behaviour(process) == .crashesAfterReady || Int.random(in: 0 ..< 6, using: &rng) == 0 {
                    trace.append("worker \(process.instance) (\(process.generation)/\(process.worker)) crashes")
                    excused = true
                    world.crash(process.instance, .killed(signal: SIGSEGV))
                }
            case 40 ..< 50:
                trace.append("stopped workers exit")
                world.stoppedOnesExit()
            case 50 ..< 57:
                trace.append("restart")
                world.supervision(.restartRequested(reason: "SIGUSR2"))
            case 57 ..< 64 where !pool.supervision.binaryLife.isOnTrial && pool.supervision.binaryLife.rollback == nil:
                releases += 1
                let name = "R\(releases)"
                behaviours[name] = [.good, .good, .neverReady, .crashesAfterReady].randomElement(using: &rng)!
                trace.append("release \(name) (\(behaviours[name]!))")
                world.supervision(.binaryLife(.installing(.init(sha256: name))))
                world.program = name
                world.supervision(.restartRequested(reason: "upgrade"))
            case 64 ..< 72 where pool.supervision.binaryLife.rollback != nil:
                let target = pool.supervision.binaryLife.rollback!.target.sha256
                trace.append("rollback to \(target) done")
                world.program = target
                world.supervision(.binaryLife(.rollbackFinished(restored: target, failure: nil)))
            case 72 ..< 90:
                let timers = world.timers.keys.sorted { "\($0)" < "\($1)" }
                let supervisionTimers = world.supervisionTimers.keys.sorted { "\($0)" < "\($1)" }
                if !timers.isEmpty, Bool.random(using: &rng) {
                    let timer = timers.randomElement(using: &rng)!
                    if case .stopTimeout = timer { excused = true }
                    trace.append("timer \(timer)")
                    world.fire(timer)
                } else if let timer = supervisionTimers.randomElement(using: &rng) {
                    if timer == .trialWindow, let crashing = ready.first(where: { behaviour($0) == .crashesAfterReady }) {
                        // A bad release crashes within its probation (that is what makes it bad).
                        trace.append("worker \(crashing.instance) of a bad release crashes before its window ends")
                        excused = true
                        world.crash(crashing.instance, .killed(signal: SIGSEGV))
                        return finishStep(readyBefore: readyBefore, rollingBackBefore: rollingBackBefore, traceBefore: traceBefore, excused: true)
                    }
                    if case .stopTimeout = timer { excused = true }
                    trace.append("supervision timer \(timer)")
                    world.fire(timer)
                }
            case 90 ..< 93:
                restartOverseerd()
                return
            case 93 ..< 96:
                // The program cannot be started for a moment (EMFILE, say): a restart whose whole batch fails to spawn.
                trace.append("restart, its spawns fail")
                world.spawnFails = true
                world.supervision(.restartRequested(reason: "SIGUSR2"))
                world.spawnFails = false
            case 96 ..< 99:
                reexecOverseerd()
            default:
                break
            }
            finishStep(readyBefore: readyBefore, rollingBackBefore: rollingBackBefore, traceBefore: traceBefore, excused: excused)
        }

        mutating func finishStep(readyBefore: Int, rollingBackBefore: Bool, traceBefore: Int, excused: Bool) {
            if world.exited != nil {
                // The crash rule, or everything failing at the first start: systemd starts overseerd again.
                trace.append("overseerd exited with \(world.exited!); started again")
                restartOverseerd(alreadyExited: true)
                return
            }
            let after = world.pool
            if getenv("OVERSEERD_WORKER_SIMULATION_ACTIONS") != nil {
                trace.append("  → serving \(String(describing: after.supervision.serving)) candidate \(String(describing: after.supervision.candidate)) live \(after.supervision.liveGenerations) slots \(world.slotView) procs \(after.processes.values.sorted { $0.instance < $1.instance }.map { "\($0.instance):\($0.generation)/\($0.worker)\($0.state)" })")
            }
            check(after.count(.starting) + after.count(.ready) <= workers + batch,
                  "invariant 1: \(after.count(.starting)) starting + \(after.count(.ready)) ready > \(workers) + \(batch)")
            // With nothing serving (every worker of it crashed), a failed candidate's workers stop as one child would.
            if everServed, !excused, !after.supervision.isShuttingDown, after.supervision.serving != nil {
                check(world.readyCount >= readyBefore, "invariant 2: ready workers dropped from \(readyBefore) to \(world.readyCount) (\(world.slotView))")
            }
            if rollingBackBefore, after.supervision.binaryLife.rollback != nil {
                let spawned = world.trace[traceBefore...].contains { if case .spawnWorker = $0 { true } else { false } }
                check(!spawned, "invariant 3: a worker started during a rollback")
            }
            for case let .supervision(.rollBack(target, _)) in world.trace[traceBefore...] {
                check(target.sha256 == "A" || proven.contains(target.sha256), "invariant 6: rollback to \(target.sha256), which never passed probation")
            }
            for case let .spawnWorker(instance, _, _) in world.trace[traceBefore...] {
                if let binary = after.processes[instance]?.binary {
                    check(!after.supervision.binaryLife.rejected.contains(binary), "invariant 7: worker \(instance) started on rejected \(binary)")
                }
            }
            for case let .startTimer(.replace(worker), _) in world.trace[traceBefore...] {
                let current = after.slots[worker].current.flatMap { after.processes[$0] }
                check(!(current?.state == .ready && current?.generation == after.supervision.serving),
                      "invariant 8: slot \(worker) is to start again, yet its worker of serving generation \(String(describing: after.supervision.serving)) is ready")
            }
            if let good = after.supervision.binaryLife.lastGood?.sha256 { proven.insert(good) }
            for generation in Set(after.processes.values.map(\.generation)) {
                let binaries = Set(after.workers(of: generation).filter { $0.state != .stopping }.compactMap(\.binary))
                check(binaries.count <= 1, "invariant 4: generation \(generation) runs \(binaries.sorted())")
            }
            if after.supervision.serving != nil { everServed = true }
        }

        /// overseerd stops (SIGTERM, every worker exits) and starts again from its record.
        mutating func restartOverseerd(alreadyExited: Bool = false) {
            if !alreadyExited {
                trace.append("overseerd stopped and started again")
                world.supervision(.stopRequested(signal: SIGTERM))
                world.stoppedOnesExit()
                for instance in world.alive.sorted() { world.crash(instance, .exited(0)) }
                check(world.exited != nil, "overseerd did not exit once every worker had")
            }
            restartsOfOverseerd += 1
            var program = world.program
            if let rollback = world.pool.supervision.binaryLife.rollback {
                // Killed mid-rollback: the file is one or the other.
                program = Bool.random(using: &rng) ? rollback.target.sha256 : rollback.bad.sha256
            }
            world = Self.start(workers: workers, batch: batch, record: world.pool.supervision.binaryLife.record, program: program)
            everServed = false
        }

        /// overseerd re-executes itself (`PoolWorld.reexec`): refused while anything
        /// but one ready worker per slot runs; else the same workers serve on, adopted.
        mutating func reexecOverseerd() {
            let before = world.pool.processes
            let alive = world.alive
            let slots = world.pool.slots.map(\.current)
            if let refusal = world.reexec() {
                trace.append("re-exec refused: \(refusal)")
                check(world.pool.processes == before, "a refused re-exec changed the workers")
                return
            }
            reexecs += 1
            trace.append("re-exec: \(world.slotView) adopted")
            check(world.pool.processes == before && world.pool.slots.map(\.current) == slots, "the new image did not adopt the workers as they were")
            check(world.alive == alive, "a re-exec handed over while other workers ran: \(alive.subtracting(world.alive))")
        }

        /// Lets everything settle with healthy workers (a bad release's workers still fail).
        mutating func settle() {
            for _ in 0 ..< 400 {
                if world.exited != nil { restartOverseerd(alreadyExited: true) }
                if let rollback = world.pool.supervision.binaryLife.rollback {
                    world.program = rollback.target.sha256
                    world.supervision(.binaryLife(.rollbackFinished(restored: rollback.target.sha256, failure: nil)))
                    continue
                }
                world.stoppedOnesExit()
                if let process = world.pool.processes.values.filter({ $0.state == .starting && world.alive.contains($0.instance) }).min(by: { $0.instance < $1.instance }) {
                    if behaviour(process) == .neverReady { world.crash(process.instance) } else { world.send(.workerReady(instance: process.instance)) }
                    continue
                }
                if world.supervisionTimers[.trialWindow] != nil,
                   let crashing = world.pool.processes.values.first(where: { $0.state == .ready && behaviour($0) == .crashesAfterReady }) {
                    world.crash(crashing.instance, .killed(signal: SIGSEGV))
                    continue
                }
                if let timer = world.timers.keys.first(where: { if case .replace = $0 { true } else { false } }) {
                    world.fire(timer)
                    continue
                }
                if world.supervisionTimers[.trialWindow] != nil {
                    world.fire(.trialWindow)
                    continue
                }
                if world.pool.supervision.restartQueued || world.pool.rollingTo != nil { continue }
                if world.exited != nil { continue }
                break
            }
            world.stoppedOnesExit()
            let pool = world.pool
            guard let serving = pool.supervision.serving else {
                let s = pool.supervision
                return check(false, "invariant 5: nothing serves at the end (\(world.slotView)); candidate \(String(describing: s.candidate)), live \(s.liveGenerations), stopping \(s.isShuttingDown), queued \(s.restartQueued), rollback \(s.binaryLife.rollback != nil), processes \(pool.processes.values.map { "\($0.instance):\($0.generation)/\($0.worker) \($0.state)" }), exited \(String(describing: world.exited)), alive \(world.alive)")
            }
            for slot in pool.slots {
                let process = slot.current.flatMap { pool.processes[$0] }
                check(process?.generation == serving && process?.state == .ready, "invariant 5: slot \(slot.worker) is \(world.slotView[slot.worker]), generation \(serving) serves")
                check(process?.binary == world.program, "invariant 5: slot \(slot.worker) runs \(process?.binary ?? "nothing"), the file is \(world.program)")
                if let binary = process?.binary {
                    check(!pool.supervision.binaryLife.rejected.contains(binary) || pool.supervision.binaryLife.lastGood?.sha256 == binary,
                          "invariant 5: rejected \(binary) serves at the end")
                    check(behaviours[binary] == .good, "invariant 5: a bad release \(binary) serves at the end")
                }
            }
        }
    }

    static func run(seed: UInt64, steps: Int = 300) -> Scenario {
        var scenario = Scenario(seed: seed)
        for _ in 0 ..< steps where scenario.failures.isEmpty { scenario.step() }
        if scenario.failures.isEmpty { scenario.settle() }
        return scenario
    }

    @Test func seededScenariosKeepEveryInvariant() {
        if let only = getenv("OVERSEERD_WORKER_SIMULATION_SEED").flatMap({ UInt64(String(cString: $0)) }) {
            let scenario = Self.run(seed: only)
            print(scenario.trace.joined(separator: "\n"))
            if getenv("OVERSEERD_WORKER_SIMULATION_ACTIONS") != nil { for action in scenario.world.trace { print(action) } }
            #expect(scenario.failures.isEmpty, "seed \(only): \(scenario.failures)")
            return
        }
        var releases = 0, restarts = 0, rollbacks = 0, reexecs = 0
        for seed in UInt64(1) ... 250 {
            let scenario = Self.run(seed: seed)
            releases += scenario.releases
            restarts += scenario.restartsOfOverseerd
            reexecs += scenario.reexecs
            rollbacks += scenario.world.rollbacks.count
            if !scenario.failures.isEmpty {
                Issue.record("seed \(seed) (N=\(scenario.workers), K=\(scenario.batch)): \(scenario.failures.prefix(3))\n\(scenario.trace.suffix(25).joined(separator: "\n"))")
                return
            }
        }
        #expect(releases > 250, "the scenarios release often enough to matter (\(releases))")
        #expect(restarts > 60, "and restart overseerd (\(restarts))")
        #expect(reexecs > 60, "and re-execute it with its workers adopted (\(reexecs))")
    }
}

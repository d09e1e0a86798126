import Glibc
@testable import OverseerCore
import Testing

/// Three workers, all ready, generation 1 serving.
private func serving(_ workers: Int = 3, batch: Int = 1, record: BinaryLife.Record = .init(),
                     settings: Supervision.Settings = .init(readiness: .notify)) -> PoolWorld {
    var world = PoolWorld(workers: workers, batch: batch, settings: settings, record: record)
    world.supervision(.binaryLife(.started(identified: "A")))
    world.supervision(.started)
    world.allReady()
    return world
}

@Suite struct WorkerPoolStartTests {
    @Test func theFirstGenerationStartsEveryWorkerAtOnceAndIsReadyWhenAllAre() {
        var world = PoolWorld(workers: 3)
        world.supervision(.started)
        #expect(world.spawns(of: 1) == [0, 1, 2])
        #expect(world.pool.supervision.candidate == 1)
        let instances = world.pool.workers(of: 1).map(\.instance)
        world.send(.workerReady(instance: instances[0]))
        world.send(.workerReady(instance: instances[1]))
        #expect(world.reports.isEmpty, "not ready before every worker is")
        world.send(.workerReady(instance: instances[2]))
        #expect(world.reports == [.ready(generation: 1, restartSucceeded: nil)])
        #expect(world.pool.supervision.serving == 1)
        #expect(world.slotView == ["1r", "1r", "1r"])
    }

    @Test func aWorkerCrashingAtTheFirstStartEndsOverseerdWithItsStatus() {
        var world = PoolWorld(workers: 3)
        world.supervision(.started)
        let instances = world.pool.workers(of: 1).map(\.instance)
        world.send(.workerReady(instance: instances[0]))
        world.crash(instances[1], .exited(7))
        #expect(world.pool.supervision.isShuttingDown)
        #expect(world.asked == Set([instances[0], instances[2]]), "the others are stopped")
        #expect(world.exited == nil, "not before they are gone")
        world.stoppedOnesExit()
        #expect(world.exited == .exited(7))
    }

    @Test func aProgramThatCannotBeStartedEndsOverseerdAsWithOneChild() {
        var world = PoolWorld(workers: 2)
        world.spawnFails = true
        world.supervision(.started)
        #expect(world.exited == .exited(127))
    }

    @Test func aWorkerNotReadyInTimeAtTheFirstStartEndsOverseerd() {
        var world = PoolWorld(workers: 2)
        world.supervision(.started)
        let instances = world.pool.workers(of: 1).map(\.instance)
        world.send(.workerReady(instance: instances[0]))
        world.fire(.readyTimeout(instance: instances[1]))
        #expect(world.pool.supervision.isShuttingDown)
        world.stoppedOnesExit()
        #expect(world.exited == .exited(OverseerExitCode.notReady))
    }

    @Test func readyByDelayIsPerWorker() {
        var world = PoolWorld(workers: 2, settings: .init(readiness: .delay(.seconds(1))))
        world.supervision(.started)
        let instances = world.pool.workers(of: 1).map(\.instance)
        #expect(world.timers[.readyDelay(instance: instances[0])] == .seconds(1))
        world.fire(.readyDelay(instance: instances[0]))
        world.fire(.readyDelay(instance: instances[1]))
        #expect(world.reports == [.ready(generation: 1, restartSucceeded: nil)])
    }
}

@Suite struct WorkerPoolRollTests {
    @Test func aRestartReplacesOneSlotAtATimeAndStopsTheOldWorkerOnlyOnceTheNewOneIsReady() {
        var world = serving(3)
        let old = world.pool.workers(of: 1).map(\.instance)
        world.supervision(.restartRequested(reason: "SIGUSR2"))
        #expect(world.spawns(of: 2) == [0])
        #expect(world.asked.isEmpty)
        #expect(world.logged(.rollStarted))
        let first = world.pool.workers(of: 2)[0].instance
        world.send(.workerReady(instance: first))
        #expect(world.asked == [old[0]], "slot 0's old worker stops once its new one is ready")
        #expect(world.spawns(of: 2) == [0, 1])
        #expect(world.readyCount == 3)
        world.readyUntilSettled()
        #expect(world.reports.last == .ready(generation: 2, restartSucceeded: true))
        #expect(world.slotView == ["2r", "2r", "2r"])
        #expect(world.asked == Set(old))
        #expect(world.mostActive <= 4, "at most N + K")
        world.stoppedOnesExit()
        #expect(world.pool.supervision.liveGenerations == [2])
    }

    @Test func aBatchOfTwoStartsTwoAtOnceAndNeverMoreThanNPlusTwo() {
        var world = serving(4, batch: 2)
        world.supervision(.restartRequested(reason: "SIGUSR2"))
        #expect(world.spawns(of: 2) == [0, 1])
        world.readyUntilSettled()
        #expect(world.slotView == ["2r", "2r", "2r", "2r"])
        #expect(world.mostActive == 6)
    }

    @Test func aRestartDuringARollIsQueuedAndRunsAfterIt() {
        var world = serving(2)
        world.supervision(.restartRequested(reason: "SIGUSR2"))
        world.supervision(.restartRequested(reason: "restart command"))
        world.supervision(.restartRequested(reason: "again"))
        #expect(world.pool.supervision.restartQueued)
        world.readyUntilSettled()
        #expect(world.slotView == ["3r", "3r"], "the queued one rolled on after the first")
        #expect(world.spawns(of: 4).isEmpty, "at most one queued")
    }

    @Test func aFailedWorkerOfTheSameBinaryIsRetriedOnceThenTheRollGoesOn() {
        var world = serving(3)
        world.supervision(.restartRequested(reason: "SIGUSR2"))
        let first = world.pool.workers(of: 2)[0].instance
        world.crash(first, .exited(1))
        #expect(world.spawns(of: 2) == [0, 0], "slot 0 once more")
        world.readyUntilSettled()
        #expect(world.reports.last == .ready(generation: 2, restartSucceeded: true))
    }

    @Test func aFailedWorkerRetriedOnceAndFailingAgainFailsTheRestartAndGivesTheSlotsBack() {
        var world = serving(3)
        world.supervision(.restartRequested(reason: "SIGUSR2"))
        world.send(.workerReady(instance: world.pool.workers(of: 2)[0].instance))
        world.stoppedOnesExit()
        world.crash(world.pool.workers(of: 2).first { $0.state == .starting }!.instance)
        world.crash(world.pool.workers(of: 2).first { $0.state == .starting }!.instance)
        #expect(world.reports.last == .ready(generation: 1, restartSucceeded: false))
        #expect(world.pool.supervision.lastRestart?.succeeded == false)
        // Slot 0 runs generation 2 until a worker of generation 1 is ready in it.
        #expect(world.slotView[0] == "2r")
        #expect(world.spawns(of: 1).suffix(1) == [0])
        #expect(world.readyCount == 3, "capacity kept")
        world.readyUntilSettled()
        #expect(world.slotView == ["1r", "1r", "1r"])
        world.stoppedOnesExit()
        #expect(world.pool.supervision.liveGenerations == [1])
    }

    @Test func aNewBinaryWhoseThirdWorkerFailsLeavesEveryWorkerOnTheOldBinary() {
        var world = serving(4, record: .init())
        // Install B on trial, then the restart that rolls it.
        world.supervision(.binaryLife(.installing(.init(sha256: "B"))))
        world.program = "B"
        world.supervision(.restartRequested(reason: "upgrade"))
        world.send(.workerReady(instance: world.pool.workers(of: 2)[0].instance))
        world.send(.workerReady(instance: world.pool.workers(of: 2)[1].instance))
        #expect(world.slotView == ["2r", "2r", "1r", "1r"])
        let third = world.pool.workers(of: 2).first { $0.state == .starting }!
        #expect(third.worker == 2)
        world.crash(third.instance, .exited(9))
        #expect(world.rollbacks.map(\.to.sha256) == ["A"], "no retry for a new binary: the trial failed")
        #expect(world.reports.last == .ready(generation: 1, restartSucceeded: false))
        let spawnsBefore = world.trace.count { if case .spawnWorker = $0 { true } else { false } }
        #expect(world.readyCount == 4)
        // Nothing starts while the file is being put back.
        world.send(.timerFired(.replace(worker: 2)))
        #expect(world.trace.count { if case .spawnWorker = $0 { true } else { false } } == spawnsBefore)
        world.program = "A"
        world.supervision(.binaryLife(.rollbackFinished(restored: "A", failure: nil)))
        #expect(world.spawns(of: 1).count == 5, "slot 0 given back first (4 at the start + 1)")
        world.readyUntilSettled()
        world.stoppedOnesExit()
        #expect(world.slotView == ["1r", "1r", "1r", "1r"])
        #expect(world.pool.workers(of: 1).allSatisfy { $0.binary == "A" })
        #expect(world.pool.supervision.liveGenerations == [1])
        #expect(world.pool.supervision.binaryLife.rejected == ["B"])
    }

    @Test func aNewWorkerNotReadyInTimeFailsTheRoll() {
        var world = serving(2)
        world.program = "B"
        world.supervision(.restartRequested(reason: "SIGUSR2"))
        let new = world.pool.workers(of: 2)[0].instance
        world.fire(.readyTimeout(instance: new))
        #expect(world.asked.contains(new))
        #expect(world.reports.last == .ready(generation: 1, restartSucceeded: false))
        #expect(world.readyCount == 2)
    }

    @Test func anOldWorkerCrashingDuringARollHasItsSlotRolledNext() {
        var world = serving(3)
        world.supervision(.restartRequested(reason: "SIGUSR2"))
        let oldSlot2 = world.pool.workers(of: 1).first { $0.worker == 2 }!.instance
        world.crash(oldSlot2)
        world.send(.workerReady(instance: world.pool.workers(of: 2)[0].instance))
        #expect(world.spawns(of: 2) == [0, 2], "the empty slot before slot 1")
        world.readyUntilSettled()
        #expect(world.reports.last == .ready(generation: 2, restartSucceeded: true))
    }

    @Test func aStopDuringARollStopsEveryWorkerAndLeavesWithTheServingOnesStatus() {
        var world = serving(2)
        world.supervision(.restartRequested(reason: "SIGUSR2"))
        world.supervision(.stopRequested(signal: SIGTERM))
        #expect(world.asked.count == 3)
        world.stoppedOnesExit()
        #expect(world.exited == .exited(0))
    }

    @Test func aForwardedSignalReachesEveryWorkerOfTheServingGeneration() {
        var world = serving(3)
        world.supervision(.signalReceived(SIGHUP))
        let signalled = world.trace.compactMap { if case let .signalWorker(instance, SIGHUP) = $0 { return instance } else { return nil } }
        #expect(Set(signalled) == Set(world.pool.workers(of: 1).map(\.instance)))
    }
}

@Suite struct WorkerPoolCrashTests {
    @Test func aCrashedWorkerIsReplacedAfterADelayThatDoublesUpToTheMaximum() {
        var world = serving(2)
        var delays: [Duration] = []
        for _ in 0 ..< 9 {
            let worker = world.pool.workers(of: 1).first { $0.worker == 0 }!
            world.crash(worker.instance)
            delays.append(world.timers[.replace(worker: 0)]!)
            world.fire(.replace(worker: 0))
            #expect(world.spawns(of: 1).last == 0)
            world.allReady()
            // The crash window ends before the next crash: no giving up.
            world.fire(.crashWindow(worker: 0))
        }
        #expect(delays.map { $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000 } == [100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000])
        #expect(world.pool.slots[0].restarts == 9)
        #expect(world.pool.supervision.serving == 1)
        #expect(world.exited == nil)
    }

    @Test func aMinuteReadyResetsTheDelay() {
        var world = serving(2)
        world.crash(world.pool.workers(of: 1).first { $0.worker == 1 }!.instance)
        world.fire(.replace(worker: 1))
        world.allReady()
        world.crash(world.pool.workers(of: 1).first { $0.worker == 1 }!.instance)
        #expect(world.timers[.replace(worker: 1)] == .milliseconds(200))
        world.fire(.replace(worker: 1))
        world.allReady()
        #expect(world.timers[.healthy(worker: 1)] == .seconds(60))
        world.fire(.healthy(worker: 1))
        world.crash(world.pool.workers(of: 1).first { $0.worker == 1 }!.instance)
        #expect(world.timers[.replace(worker: 1)] == .milliseconds(100))
    }

    @Test func everyWorkerCrashingWithinTheWindowEndsOverseerdAsTheLastOneDid() {
        var world = serving(3)
        let workers = world.pool.workers(of: 1).map(\.instance)
        world.crash(workers[0], .exited(4))
        world.crash(workers[1], .exited(4))
        #expect(world.exited == nil)
        world.crash(workers[2], .killed(signal: SIGSEGV))
        #expect(world.logged(.workersCrashed))
        #expect(world.exited == .killed(signal: SIGSEGV))
    }

    @Test func crashesSpreadOverMoreThanTheWindowDoNotEndOverseerd() {
        var world = serving(2)
        let workers = world.pool.workers(of: 1).map(\.instance)
        world.crash(workers[0])
        world.fire(.crashWindow(worker: 0))
        world.crash(workers[1])
        #expect(world.exited == nil)
        world.fire(.replace(worker: 0))
        world.fire(.replace(worker: 1))
        world.allReady()
        #expect(world.slotView == ["1r", "1r"])
    }

    @Test func aReadyReplacementKeepsTheServiceUpEvenIfTheOthersCrashLater() {
        var world = serving(2)
        let workers = world.pool.workers(of: 1).map(\.instance)
        world.crash(workers[0])
        world.fire(.replace(worker: 0))
        world.allReady()
        world.crash(workers[1])
        #expect(world.exited == nil, "slot 0 has a ready worker")
    }

    @Test func replacementsThatNeverBecomeReadyEndOverseerdOnceEverySlotFailed() {
        var world = serving(2)
        let workers = world.pool.workers(of: 1).map(\.instance)
        world.crash(workers[0], .exited(5))
        world.fire(.replace(worker: 0))
        world.crash(world.pool.workers(of: 1).first { $0.state == .starting }!.instance, .exited(5))
        world.crash(workers[1], .exited(6))
        world.stoppedOnesExit()
        #expect(world.exited == .exited(6))
    }
}

@Suite struct WorkerPoolProbationTests {
    /// Generation 2 serves B on probation over `workers` slots.
    private func onProbation(_ workers: Int = 3) -> PoolWorld {
        var world = serving(workers, settings: .init(readiness: .notify, probation: .seconds(10)))
        world.supervision(.binaryLife(.installing(.init(sha256: "B"))))
        world.program = "B"
        world.supervision(.restartRequested(reason: "upgrade"))
        world.readyUntilSettled()
        world.stoppedOnesExit()
        return world
    }

    @Test func theProbationWindowStartsWhenEveryWorkerOfTheTrialBinaryIsReady() {
        let world = onProbation()
        #expect(world.supervisionTimers[.trialWindow] == .seconds(10))
        #expect(world.pool.supervision.binaryLife.trialServing)
    }

    @Test func anyWorkerOfTheTrialBinaryCrashingRollsEverySlotBackToTheLastGoodBinary() {
        var world = onProbation(3)
        let crashed = world.pool.workers(of: 2)[1]
        world.crash(crashed.instance, .killed(signal: SIGSEGV))
        #expect(world.rollbacks.map(\.to.sha256) == ["A"])
        #expect(world.pool.supervision.binaryLife.rejected == ["B"])
        #expect(world.spawns(of: 3).isEmpty, "nothing starts before the file is back")
        world.program = "A"
        world.supervision(.binaryLife(.rollbackFinished(restored: "A", failure: nil)))
        #expect(world.spawns(of: 3).first == crashed.worker, "the empty slot first")
        world.readyUntilSettled()
        world.stoppedOnesExit()
        #expect(world.slotView == ["3r", "3r", "3r"])
        #expect(world.pool.workers(of: 3).allSatisfy { $0.binary == "A" })
        #expect(world.pool.supervision.liveGenerations == [3])
        #expect(world.exited == nil)
    }

    @Test func theTrialPassesOnceTheWindowEndsWithEveryWorkerUp() {
        var world = onProbation()
        world.fire(.trialWindow)
        #expect(world.pool.supervision.binaryLife.lastGood?.sha256 == "B")
        // A crash after that is a plain crash: replaced, no rollback.
        world.crash(world.pool.workers(of: 2)[0].instance)
        #expect(world.rollbacks.isEmpty)
        #expect(world.timers[.replace(worker: 0)] != nil)
    }
}

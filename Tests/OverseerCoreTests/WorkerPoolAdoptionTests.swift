import Glibc
@testable import OverseerCore
import Testing

/// A re-exec with `--workers N`: what the pool hands over, when it refuses,
/// and that the new image's pool (`WorkerPool.adopting`) goes on as the old
/// one would have: crashes replaced with the slot's backoff, rolls, the trial.
@Suite struct WorkerPoolAdoptionTests {
    /// N workers of generation 1, all ready.
    private func serving(_ workers: Int = 3, settings: Supervision.Settings = .init(readiness: .notify)) -> PoolWorld {
        var world = PoolWorld(workers: workers, settings: settings)
        world.supervision(.binaryLife(.started(identified: "A")))
        world.supervision(.started)
        world.allReady()
        return world
    }

    @Test func aSettledPoolIsHandedOverSlotBySlotAndAdoptedAsItWas() {
        var world = serving(3)
        let before = world.pool.slots.map(\.current)
        let instances = world.pool.workers(of: 1).map(\.instance)
        #expect(world.pool.handoverRefusal == nil)
        #expect(world.pool.handover.map(\.worker) == [0, 1, 2])
        #expect(world.pool.handover.allSatisfy { $0.generation == 1 && $0.binary == "A" && $0.restarts == 0 })
        #expect(world.reexec() == nil)
        #expect(world.pool.slots.map(\.current) == before)
        #expect(world.slotView == ["1r", "1r", "1r"])
        #expect(world.pool.supervision.serving == 1)
        #expect(world.pool.supervision.binaryLife.generations[1] == "A")
        #expect(world.spawns(of: 1).count == 3, "nothing started again: only the first image's three")
        #expect(world.asked.isEmpty)
        // A restart in the new image rolls every adopted slot over, one at a time, new instance numbers.
        world.supervision(.restartRequested(reason: "SIGUSR2"))
        #expect(world.spawns(of: 2) == [0])
        let first = world.pool.workers(of: 2)[0].instance
        #expect(!instances.contains(first))
        world.send(.workerReady(instance: first))
        #expect(world.asked == [instances[0]], "the adopted worker of slot 0 stops once its new one is ready")
        world.readyUntilSettled()
        #expect(world.slotView == ["2r", "2r", "2r"])
        #expect(world.asked == Set(instances))
        #expect(world.reports.last == .ready(generation: 2, restartSucceeded: true))
        world.stoppedOnesExit()
        #expect(world.pool.supervision.liveGenerations == [2])
    }

    @Test func anAdoptedWorkerThatCrashesIsReplacedWithItsSlotsBackoff() {
        var world = serving(2)
        let slot1 = world.pool.slots[1].current!
        world.crash(slot1, .killed(signal: SIGKILL))
        #expect(world.timers[.replace(worker: 1)] == .milliseconds(100))
        #expect(world.pool.handoverRefusal?.contains("worker 1 is being replaced") == true)
        #expect(world.reexec()?.contains("worker 1 is being replaced") == true, "refused while the slot waits")
        world.fire(.replace(worker: 1))
        world.allReady()
        #expect(world.pool.handoverRefusal == nil)
        #expect(world.reexec() == nil)
        #expect(world.pool.slots[1].restarts == 1, "the count goes on")
        #expect(world.timers[.healthy(worker: 1)] == .seconds(60), "the slot's delay resets only after a healthy minute in the new image")
        world.crash(world.pool.slots[1].current!, .killed(signal: SIGKILL))
        #expect(world.timers[.replace(worker: 1)] == .milliseconds(200), "the backoff doubled, as in the old image")
        #expect(world.pool.slots[1].restarts == 2)
        world.fire(.replace(worker: 1))
        #expect(world.spawns(of: 1).filter { $0 == 1 }.count == 3)
        world.allReady()
        #expect(world.slotView == ["1r", "1r"])
    }

    @Test func aRollIsNotHandedOverTheReexecIsRefusedUntilItEnds() {
        var world = serving(3)
        world.supervision(.restartRequested(reason: "SIGUSR2"))
        #expect(world.pool.handoverRefusal?.contains("rolling restart to generation 2 is under way") == true)
        world.readyUntilSettled()
        #expect(world.pool.handoverRefusal?.contains("3 worker(s) still stopping") == true, "the old workers still drain")
        world.stoppedOnesExit()
        #expect(world.pool.handoverRefusal == nil)
        #expect(world.reexec() == nil)
        #expect(world.slotView == ["2r", "2r", "2r"])
    }

    @Test func aWorkerStillStartingOrNothingServingIsRefused() {
        var world = PoolWorld(workers: 2)
        world.supervision(.started)
        #expect(world.pool.handoverRefusal == "no generation is serving yet; try again once one is ready", "the first start")
        #expect(world.reexec() != nil)
        world.send(.workerReady(instance: world.pool.workers(of: 1)[0].instance))
        #expect(world.pool.handoverRefusal != nil, "one of two ready")
        world.allReady()
        #expect(world.pool.handoverRefusal == nil)
    }

    @Test func theTrialGoesOnInTheNewImageAndAnAdoptedWorkerCrashingFailsIt() {
        var world = serving(2, settings: .init(readiness: .notify, probation: .seconds(10)))
        world.supervision(.binaryLife(.installing(.init(sha256: "B"))))
        world.program = "B"
        world.supervision(.restartRequested(reason: "upgrade"))
        world.readyUntilSettled()
        world.stoppedOnesExit()
        #expect(world.pool.supervision.binaryLife.isOnTrial)
        #expect(world.reexec() == nil)
        #expect(world.pool.supervision.binaryLife.isOnTrial, "the trial is carried")
        #expect(world.supervisionTimers[.trialWindow] == .seconds(10), "its window runs again from the take-over")
        world.crash(world.pool.slots[0].current!, .killed(signal: SIGSEGV))
        #expect(world.rollbacks.map(\.to.sha256) == ["A"], "one worker of the binary on trial crashing rolls back")
        world.program = "A"
        world.supervision(.binaryLife(.rollbackFinished(restored: "A", failure: nil)))
        world.readyUntilSettled()
        world.stoppedOnesExit()
        #expect(world.slotView == ["3r", "3r"])
        #expect(world.pool.workers(of: 3).allSatisfy { $0.binary == "A" })
    }

    @Test func workersThatDoNotFitThePoolAreRefusedByTheNewImage() {
        let settings = WorkerSettings(count: 3)
        func worker(_ number: Int, instance: Int? = nil, generation: Int = 4) -> WorkerPool.AdoptedWorker {
            .init(worker: number, instance: instance ?? number + 1, generation: generation, binary: "A", restarts: 0, delay: .milliseconds(100))
        }
        #expect(WorkerPool.adoptionProblem([worker(0), worker(1), worker(2)], settings: settings, serving: 4) == nil)
        #expect(WorkerPool.adoptionProblem([worker(0), worker(1)], settings: settings, serving: 4)?.contains("workers 0,1 and --workers is 3") == true)
        #expect(WorkerPool.adoptionProblem([worker(0), worker(1), worker(1)], settings: settings, serving: 4) != nil)
        #expect(WorkerPool.adoptionProblem([worker(0), worker(1), worker(2, generation: 3)], settings: settings, serving: 4)?
            .contains("worker 2 runs generation 3") == true)
        #expect(WorkerPool.adoptionProblem([worker(0), worker(1), worker(2, instance: 1)], settings: settings, serving: 4)?
            .contains("share an instance") == true)
        #expect(WorkerPool.adoptionProblem([worker(0), worker(1), worker(2, instance: 0)], settings: settings, serving: 4) != nil)
        let supervision = Supervision(settings: .init(readiness: .notify), adoptingServing: 4, binary: "A")
        #expect(WorkerPool.adopting([worker(0), worker(1)], settings: settings, supervision: supervision) == nil)
        // A delay out of range is brought back within the flags'.
        var slow = worker(2)
        slow.delay = .seconds(3600)
        let adopted = WorkerPool.adopting([worker(0), worker(1), slow], settings: settings, supervision: supervision)
        #expect(adopted?.pool.slots[2].delay == settings.restartMaxDelay)
    }

    @Test func theWorkerRecordsRoundTripAndBadOnesAreRefused() throws {
        let record = HandoverState.WorkerRecord(worker: 2, instance: 7, generation: 3, pid: 4242, pidfd: 9, notifyFD: 10,
                                                notifyAddress: "/run/o/3.2\tx", binaryID: "ab", startedAt: 5, readyAt: 6,
                                                lastStatus: "50% done\nok", lastWatchdog: nil, restarts: 4, delay: .milliseconds(800))
        var state = HandoverState(startedAt: 1, listeners: [],
                                  child: .init(generation: 3, pid: 4242, pidfd: 9, notifyFD: 10, notifyAddress: "/run/o/3.2\tx",
                                               binaryID: "ab", startedAt: 5, lastStatus: nil),
                                  controlFD: nil, controlPath: nil, rejected: [])
        state.workers = [record, .init(worker: 0, instance: 8, generation: 3, pid: 4243, pidfd: 11, notifyFD: nil, notifyAddress: nil,
                                        binaryID: "ab", startedAt: 5, readyAt: nil, lastStatus: nil, lastWatchdog: 77, restarts: 0,
                                        delay: .milliseconds(100))]
        let parsed = try HandoverState(parsing: state.encoded)
        #expect(parsed.workers == state.workers)
        #expect(parsed.fds.sorted() == [9, 10, 11], "each fd once, the child's (worker 2's) not twice")
        let line = state.encoded.split(separator: "\n").first { $0.hasPrefix("worker\t") }!
        for (index, bad) in [(4, "-1"), (2, "0"), (14, "x"), (13, "-3"), (5, "nine")] {
            var fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            fields[index] = bad
            let text = state.encoded.replacing(String(line), with: fields.joined(separator: "\t"))
            #expect(throws: ConfigurationError.self, "field \(index) = \(bad)") { try HandoverState(parsing: text) }
        }
        let short = state.encoded.replacing(String(line), with: line.split(separator: "\t").dropLast().joined(separator: "\t"))
        #expect(throws: ConfigurationError.self) { try HandoverState(parsing: short) }
    }

    @Test func onlyAnImageThatSaysSoTakesOverWorkers() {
        #expect(HandoverState.takesOverWorkers(checkAnswer: HandoverState.checkConfigurationAnswer(version: "9")))
        let older = "overseerd 0.9: the command line is valid (takes over: metrics, output, binary-life, udp-flows)"
        #expect(!HandoverState.takesOverWorkers(checkAnswer: older))
        #expect(!HandoverState.takesOverWorkers(checkAnswer: "overseerd 0.1.0: the command line is valid"))
    }
}

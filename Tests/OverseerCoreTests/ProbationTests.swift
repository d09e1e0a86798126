import Glibc
import OverseerCore
import Testing

/// A release that crashes after cutover must not take the service down:
/// `Supervision` with its `BinaryLife`, event by event. Each of issue 22's
/// attack sequences has a test here (named after it) as well as one with real
/// processes.
@Suite struct ProbationTests {
    static let a = String(repeating: "a", count: 64)
    static let b = String(repeating: "b", count: 64)
    static let c = String(repeating: "c", count: 64)
    static let bRelease = BinaryLife.Release(sha256: b, version: "2.0.0")
    static let bPlain = BinaryLife.Release(sha256: b)
    static let settings = Supervision.Settings(readiness: .notify, readyTimeout: .seconds(60), stopSignal: SIGTERM,
                                               stopTimeout: .seconds(30), probation: .seconds(30))

    /// Generation 1 serves A.
    static func servingA(settings: Supervision.Settings = settings) -> Supervision {
        var machine = Supervision(settings: settings)
        #expect(machine.handle(.binaryLife(.started(identified: a))) == [.persistState])
        #expect(machine.handle(.started) == [.spawnChild(generation: 1)])
        _ = machine.handle(.childSpawned(generation: 1, binary: a))
        _ = machine.handle(.childReady(generation: 1))
        return machine
    }

    /// B installed on trial; generation 2 on B serves and is on probation; generation 1 gone.
    static func onProbation(settings: Supervision.Settings = settings) -> Supervision {
        var machine = servingA(settings: settings)
        #expect(machine.handle(.binaryLife(.installing(.init(sha256: b, version: "2.0.0")))) == [.persistState])
        _ = machine.handle(.restartRequested(reason: "upgrade"))
        _ = machine.handle(.childSpawned(generation: 2, binary: b))
        let ready = machine.handle(.childReady(generation: 2))
        #expect(ready.contains(.startTimer(.trialWindow, after: .seconds(30))))
        _ = machine.handle(.childExited(generation: 1, .exited(0)))
        #expect(machine.binaryLife.trialGenerations == [2])
        return machine
    }

    @Test func exitDuringProbationRollsBackThenStartsOnTheLastGoodBinary() {
        var machine = Self.onProbation()
        let crash = machine.handle(.childExited(generation: 2, .exited(4)))
        #expect(crash.contains(.rollBack(to: .init(sha256: Self.a), replacing: .init(sha256: Self.b, version: "2.0.0"))))
        #expect(crash.contains(.cancelTimer(.trialWindow)))
        // Rejected and persisted before anything moves; nothing starts before the file is back.
        #expect(crash.firstIndex(of: .persistState)! < crash.firstIndex { if case .rollBack = $0 { true } else { false } }!)
        #expect(!crash.contains { if case .spawnChild = $0 { true } else { false } })
        #expect(!crash.contains { if case .exit = $0 { true } else { false } })
        #expect(machine.binaryLife.rejected == [Self.b])
        let back = machine.handle(.binaryLife(.rollbackFinished(restored: Self.a, failure: nil)))
        #expect(back.last == .spawnChild(generation: 3))
        #expect(machine.binaryLife.installed == .init(sha256: Self.a))
        _ = machine.handle(.childSpawned(generation: 3, binary: Self.a))
        #expect(machine.handle(.childReady(generation: 3)).contains(.report(.ready(generation: 3, restartSucceeded: true))))
        // A is not on trial: its exit ends overseerd as before.
        #expect(machine.handle(.childExited(generation: 3, .exited(1))).last == .exit(.exited(1)))
    }

    @Test func failedRollbackExitsTheWayTheChildDid() {
        var machine = Self.onProbation()
        _ = machine.handle(.childExited(generation: 2, .killed(signal: SIGSEGV)))
        let actions = machine.handle(.binaryLife(.rollbackFinished(restored: nil, failure: "no previous file")))
        #expect(actions.last == .exit(.killed(signal: SIGSEGV)))
    }

    @Test func probationEndsAfterItsTimeAndThenAnExitEndsOverseerd() {
        var machine = Self.onProbation()
        let passed = machine.handle(.timerFired(.trialWindow))
        #expect(passed.contains(.persistState))
        #expect(machine.binaryLife.lastGood == .init(sha256: Self.b, version: "2.0.0"))
        #expect(machine.binaryLife.record.prior == .init(sha256: Self.a))
        #expect(!machine.binaryLife.isOnTrial)
        #expect(machine.handle(.childExited(generation: 2, .exited(4))).last == .exit(.exited(4)))
    }

    @Test func withoutAnUpgradeExitsEndOverseerd() {
        var machine = Self.servingA()
        #expect(machine.handle(.childExited(generation: 1, .exited(3))).last == .exit(.exited(3)))
    }

    @Test func probationZeroTrustsAtReadyButStillRollsBackBefore() {
        var machine = Self.servingA(settings: .init(readiness: .notify, probation: .zero))
        _ = machine.handle(.binaryLife(.installing(.init(sha256: Self.b))))
        _ = machine.handle(.restartRequested(reason: "upgrade"))
        _ = machine.handle(.childSpawned(generation: 2, binary: Self.b))
        // Not ready: the restart fails and B goes (A serves on).
        let failed = machine.handle(.childExited(generation: 2, .exited(1)))
        #expect(failed.contains(.rollBack(to: .init(sha256: Self.a), replacing: Self.bPlain)))
        #expect(machine.serving == 1)
    }

    @Test func stopRequestDuringProbationExitsAsUsualAndKeepsTheTrial() {
        var machine = Self.onProbation()
        _ = machine.handle(.stopRequested(signal: SIGTERM))
        let actions = machine.handle(.childExited(generation: 2, .killed(signal: SIGTERM)))
        #expect(!actions.contains { if case .rollBack = $0 { true } else { false } })
        #expect(actions.last == .exit(.killed(signal: SIGTERM)))
        #expect(machine.binaryLife.record.onTrial, "the next start goes on with the trial")
    }

    // MARK: - Issue 22's sequences

    /// 1: stopped after the install and before the new generation was ready:
    /// the record says B is on trial; the next start runs B on probation and rolls back once.
    @Test func sequence1_theTrialOutlivesOverseerd() {
        var first = Self.servingA()
        _ = first.handle(.binaryLife(.installing(.init(sha256: Self.b))))
        let record = first.binaryLife.record
        #expect(record.onTrial && record.installed?.sha256 == Self.b && record.lastGood?.sha256 == Self.a)
        var next = Supervision(settings: Self.settings, record: try! BinaryLife.Record(parsing: record.encoded))
        _ = next.handle(.binaryLife(.started(identified: Self.b)))
        #expect(next.handle(.started) == [.spawnChild(generation: 1)])
        _ = next.handle(.childSpawned(generation: 1, binary: Self.b))
        #expect(next.handle(.childReady(generation: 1)).contains(.startTimer(.trialWindow, after: .seconds(30))))
        let crash = next.handle(.childExited(generation: 1, .exited(3)))
        #expect(crash.contains(.rollBack(to: .init(sha256: Self.a), replacing: Self.bPlain)))
        #expect(next.handle(.binaryLife(.rollbackFinished(restored: Self.a, failure: nil))).last == .spawnChild(generation: 2))
    }

    /// 1 (killed between recording the trial and moving the file): the install never happened.
    @Test func sequence1_aTrialRecordedButNeverMovedIsDropped() {
        var first = Self.servingA()
        _ = first.handle(.binaryLife(.installing(.init(sha256: Self.b))))
        var next = Supervision(settings: Self.settings, record: first.binaryLife.record)
        _ = next.handle(.binaryLife(.started(identified: Self.a)))
        #expect(!next.binaryLife.isOnTrial)
        #expect(next.binaryLife.installed?.sha256 == Self.a)
    }

    /// 2: a release arriving during a trial is refused by the machine (the
    /// driver holds it until the trial ends), so an unproven binary never becomes the target.
    @Test func sequence2_noInstallDuringATrial() {
        var machine = Self.onProbation()
        let refused = machine.handle(.binaryLife(.installing(.init(sha256: Self.c))))
        #expect(!refused.contains(.persistState))
        #expect(machine.binaryLife.installed?.sha256 == Self.b)
        #expect(machine.binaryLife.lastGood?.sha256 == Self.a)
        // B fails; then C is tried against A, and C's failure goes back to A, never to B.
        _ = machine.handle(.childExited(generation: 2, .exited(1)))
        _ = machine.handle(.binaryLife(.rollbackFinished(restored: Self.a, failure: nil)))
        _ = machine.handle(.childSpawned(generation: 3, binary: Self.a))
        _ = machine.handle(.childReady(generation: 3))
        _ = machine.handle(.binaryLife(.installing(.init(sha256: Self.c))))
        _ = machine.handle(.restartRequested(reason: "upgrade"))
        _ = machine.handle(.childSpawned(generation: 4, binary: Self.c))
        let failed = machine.handle(.childExited(generation: 4, .exited(1)))
        #expect(failed.contains(.rollBack(to: .init(sha256: Self.a), replacing: .init(sha256: Self.c))))
        #expect(machine.binaryLife.rejected == [Self.b, Self.c])
    }

    /// 3: a plain restart during probation starts generation 3 on B; generation
    /// 2 crashes: generation 3 is stopped too, and A comes back.
    @Test func sequence3_everyGenerationOnTheTrialBinaryIsCovered() {
        var machine = Self.onProbation()
        _ = machine.handle(.restartRequested(reason: "SIGUSR2"))
        _ = machine.handle(.childSpawned(generation: 3, binary: Self.b))
        let crash = machine.handle(.childExited(generation: 2, .exited(4)))
        #expect(crash.contains(.signalChild(generation: 3, signal: SIGTERM)), "the candidate on B is stopped")
        #expect(crash.contains(.rollBack(to: .init(sha256: Self.a), replacing: Self.bRelease)))
        #expect(machine.candidate == nil && machine.serving == nil)
        _ = machine.handle(.childExited(generation: 3, .killed(signal: SIGTERM)))
        #expect(machine.handle(.binaryLife(.rollbackFinished(restored: Self.a, failure: nil))).last == .spawnChild(generation: 4))
    }

    /// 3 again: a generation on B started during probation crashes after cutover, past generation 2.
    @Test func sequence3_aLaterGenerationOnTheTrialBinaryIsCoveredToo() {
        var machine = Self.onProbation()
        _ = machine.handle(.restartRequested(reason: "SIGUSR2"))
        _ = machine.handle(.childSpawned(generation: 3, binary: Self.b))
        _ = machine.handle(.childReady(generation: 3))
        _ = machine.handle(.childExited(generation: 2, .exited(0)))
        #expect(machine.handle(.childExited(generation: 3, .exited(4))).contains(.rollBack(to: .init(sha256: Self.a), replacing: Self.bRelease)))
    }

    /// 4: the watchdog check comes due while a restart runs: it is not dropped.
    @Test func sequence4_theWatchdogCheckSurvivesARestart() {
        let settings = Supervision.Settings(readiness: .notify, probation: .seconds(30), probationWatchdog: .seconds(4))
        var machine = Self.onProbation(settings: settings)
        _ = machine.handle(.restartRequested(reason: "SIGUSR2"))
        _ = machine.handle(.childSpawned(generation: 3, binary: Self.b))
        // Generation 2 stopped pinging; generation 3 is still starting.
        let checked = machine.handle(.binaryLife(.trialWatchdogChecked(stale: [2])))
        #expect(checked.contains(.rollBack(to: .init(sha256: Self.a), replacing: Self.bRelease)))
        #expect(checked.contains(.signalChild(generation: 2, signal: SIGTERM)))
        #expect(checked.contains(.signalChild(generation: 3, signal: SIGTERM)))
        // No stale generation: the check is armed again.
        var healthy = Self.onProbation(settings: settings)
        #expect(healthy.handle(.binaryLife(.trialWatchdogChecked(stale: []))) == [.startTimer(.trialWatchdog, after: .seconds(1))])
    }

    /// 5: versions move with the binary they describe.
    @Test func sequence5_aRollbackPutsTheVersionBack() {
        var machine = Supervision(settings: Self.settings, record: .init(installed: .init(sha256: Self.a, version: "1.0.0")))
        _ = machine.handle(.binaryLife(.started(identified: Self.a)))
        _ = machine.handle(.started)
        _ = machine.handle(.childSpawned(generation: 1, binary: Self.a))
        _ = machine.handle(.childReady(generation: 1))
        _ = machine.handle(.binaryLife(.installing(.init(sha256: Self.b, version: "2.0.0"))))
        #expect(machine.binaryLife.installed?.version == "2.0.0")
        _ = machine.handle(.restartRequested(reason: "upgrade"))
        _ = machine.handle(.childSpawned(generation: 2, binary: Self.b))
        _ = machine.handle(.timerFired(.readyTimeout(generation: 2)))
        _ = machine.handle(.binaryLife(.rollbackFinished(restored: Self.a, failure: nil)))
        #expect(machine.binaryLife.installed == .init(sha256: Self.a, version: "1.0.0"))
    }

    /// 6: a re-exec carries the trial: the new image's machine covers the adopted generation.
    @Test func sequence6_theHandoverCarriesTheTrial() {
        let before = Self.onProbation()
        var after = Supervision(settings: Self.settings, adoptingServing: 2, binary: Self.b, record: before.binaryLife.record)
        _ = after.handle(.binaryLife(.started(identified: Self.b)))
        #expect(after.handle(.binaryLife(.generationReady(2))).contains(.startTimer(.trialWindow, after: .seconds(30))))
        #expect(after.handle(.childExited(generation: 2, .exited(4))).contains(.rollBack(to: .init(sha256: Self.a), replacing: Self.bRelease)))
    }

    /// After a rollback was recorded but before the file moved, overseerd was
    /// killed: the rejected binary is rolled back before anything starts.
    @Test func aRejectedInstalledBinaryIsRolledBackBeforeTheFirstStart() {
        var first = Self.onProbation()
        _ = first.handle(.childExited(generation: 2, .exited(4)))
        var next = Supervision(settings: Self.settings, record: first.binaryLife.record)
        let started = next.handle(.binaryLife(.started(identified: Self.b)))
        #expect(started.contains(.rollBack(to: .init(sha256: Self.a), replacing: .init(sha256: Self.b, version: "2.0.0"))))
        #expect(next.handle(.started) == [])
        #expect(next.handle(.binaryLife(.rollbackFinished(restored: Self.a, failure: nil))).last == .spawnChild(generation: 1))
    }

    @Test func aRestartAskedForDuringARollbackWaitsForIt() {
        var machine = Self.onProbation()
        _ = machine.handle(.childExited(generation: 2, .exited(4)))
        let queued = machine.handle(.restartRequested(reason: "SIGUSR2"))
        #expect(!queued.contains { if case .spawnChild = $0 { true } else { false } })
        #expect(machine.handle(.binaryLife(.rollbackFinished(restored: Self.a, failure: nil))).filter { if case .spawnChild = $0 { true } else { false } }.count == 1)
    }

    @Test func aYankOfTheServingGoodReleaseRestartsOntoThePriorOne() {
        var machine = Self.onProbation()
        _ = machine.handle(.timerFired(.trialWindow))
        let yanked = machine.handle(.binaryLife(.yanked(reason: "2.0.0 yanked")))
        #expect(yanked.contains(.rollBack(to: .init(sha256: Self.a), replacing: .init(sha256: Self.b, version: "2.0.0"))))
        #expect(machine.serving == 2, "B serves until A is back")
        let back = machine.handle(.binaryLife(.rollbackFinished(restored: Self.a, failure: nil)))
        #expect(back.last == .spawnChild(generation: 3))
        #expect(machine.binaryLife.lastGood == .init(sha256: Self.a))
    }
}

import Glibc
import OverseerCore
import Testing

/// A release that crashes after cutover must not take the service down: while
/// its binary is on probation, the serving generation's own exit rolls back.
@Suite struct ProbationTests {
    static let settings = Supervision.Settings(readiness: .notify, readyTimeout: .seconds(60), stopSignal: SIGTERM,
                                               stopTimeout: .seconds(30), probation: .seconds(30))

    /// Generation 2, on an upgraded binary, serving and on probation; generation 1 gone.
    static func onProbation() -> Supervision {
        var machine = Supervision(settings: settings)
        _ = machine.handle(.started)
        _ = machine.handle(.childSpawned(generation: 1))
        _ = machine.handle(.childReady(generation: 1))
        _ = machine.handle(.restartRequested(reason: "upgrade"))
        _ = machine.handle(.childSpawned(generation: 2))
        _ = machine.handle(.childReady(generation: 2))
        _ = machine.handle(.childExited(generation: 1, .exited(0)))
        #expect(machine.handle(.upgradeServing(generation: 2)) == [
            .log(.info, .probationStarted, "generation 2 runs a new binary: on probation for 30s", generation: 2),
            .startTimer(.probation(generation: 2), after: .seconds(30)),
        ])
        return machine
    }

    @Test func exitDuringProbationRollsBackAndStartsAgain() {
        var machine = Self.onProbation()
        #expect(machine.handle(.childExited(generation: 2, .exited(4))) == [
            .cancelTimer(.readyTimeout(generation: 2)),
            .cancelTimer(.probation(generation: 2)),
            .log(.error, .probationFailed, "generation 2 exited with status 4 during its probation; putting the previous binary back", generation: 2),
            .rollBack(generation: 2, exit: .exited(4), reason: "exited with status 4"),
            .report(.reloading),
            .spawnChild(generation: 3),
        ])
        #expect(machine.probation == nil)
        _ = machine.handle(.childSpawned(generation: 3))
        let ready = machine.handle(.childReady(generation: 3))
        #expect(ready.contains(.report(.ready(generation: 3, restartSucceeded: true))))
        #expect(machine.serving == 3)
        // The rolled-back generation is on no probation: its exit ends overseerd as before.
        #expect(machine.handle(.childExited(generation: 3, .exited(1))).last == .exit(.exited(1)))
    }

    @Test func pingsThatStopDuringProbationRollBack() {
        var machine = Self.onProbation()
        #expect(machine.handle(.probationWatchdogMissed(generation: 2)) == [
            .cancelTimer(.probation(generation: 2)),
            .log(.error, .probationFailed, "generation 2 stopped sending WATCHDOG=1 during its probation; putting the previous binary back", generation: 2),
            .signalChild(generation: 2, signal: SIGTERM),
            .startTimer(.stopTimeout(generation: 2), after: .seconds(30)),
            .rollBack(generation: 2, exit: .exited(OverseerExitCode.notReady), reason: "stopped sending WATCHDOG=1"),
            .report(.reloading),
            .spawnChild(generation: 3),
        ])
        // Once (the hung generation is stopping and no longer on probation).
        #expect(machine.handle(.probationWatchdogMissed(generation: 2)) == [])
        _ = machine.handle(.childSpawned(generation: 3))
        #expect(machine.handle(.childReady(generation: 3)).contains(.report(.ready(generation: 3, restartSucceeded: true))))
        #expect(machine.handle(.childExited(generation: 2, .killed(signal: SIGTERM))).last == .log(.debug, .generationStopped, "failed generation 2 reaped (signal SIGTERM)", generation: 2))
    }

    @Test func failedRollbackExitsTheWayTheChildDid() {
        var machine = Self.onProbation()
        _ = machine.handle(.childExited(generation: 2, .killed(signal: SIGSEGV)))
        // The previous binary cannot start either: never a loop.
        let actions = machine.handle(.childSpawnFailed(generation: 3, exitCode: 127, reason: "cannot run"))
        #expect(actions.last == .exit(.killed(signal: SIGSEGV)))
    }

    @Test func probationEndsAfterItsTimeAndThenAnExitEndsOverseerd() {
        var machine = Self.onProbation()
        #expect(machine.handle(.timerFired(.probation(generation: 2))) == [.probationPassed(generation: 2)])
        #expect(machine.probation == nil)
        #expect(machine.handle(.childExited(generation: 2, .exited(4))).last == .exit(.exited(4)))
    }

    @Test func plainRestartsAndProbationOffAreAsBefore() {
        var off = Supervision(settings: .init(readiness: .notify, probation: .zero))
        _ = off.handle(.started)
        _ = off.handle(.childSpawned(generation: 1))
        _ = off.handle(.childReady(generation: 1))
        #expect(off.handle(.upgradeServing(generation: 1)) == [])
        #expect(off.handle(.childExited(generation: 1, .exited(3))).last == .exit(.exited(3)))
    }

    @Test func aRestartDuringProbationCarriesItToTheNewGeneration() {
        var machine = Self.onProbation()
        _ = machine.handle(.restartRequested(reason: "SIGUSR2"))
        _ = machine.handle(.childSpawned(generation: 3))
        let actions = machine.handle(.childReady(generation: 3))
        #expect(actions.contains(.cancelTimer(.probation(generation: 2))))
        #expect(actions.contains(.startTimer(.probation(generation: 3), after: .seconds(30))))
        #expect(machine.probation == 3)
        _ = machine.handle(.childExited(generation: 2, .exited(0)))
        #expect(machine.handle(.childExited(generation: 3, .exited(4))).contains(.rollBack(generation: 3, exit: .exited(4), reason: "exited with status 4")))
    }

    @Test func stopRequestDuringProbationExitsAsUsual() {
        var machine = Self.onProbation()
        _ = machine.handle(.stopRequested(signal: SIGTERM))
        let actions = machine.handle(.childExited(generation: 2, .killed(signal: SIGTERM)))
        #expect(!actions.contains { if case .rollBack = $0 { true } else { false } })
        #expect(actions.last == .exit(.killed(signal: SIGTERM)))
    }
}

/// The installed binary was still on probation when overseerd (re)started.
@Suite struct ProbationAtStartTests {
    static func starting() -> Supervision {
        var machine = Supervision(settings: ProbationTests.settings)
        #expect(machine.handle(.firstGenerationOnProbation) == [])
        #expect(machine.handle(.started) == [.spawnChild(generation: 1)])
        return machine
    }

    @Test func exitBeforeReadyRollsBackOnce() {
        var machine = Self.starting()
        _ = machine.handle(.childSpawned(generation: 1))
        let actions = machine.handle(.childExited(generation: 1, .exited(2)))
        #expect(actions.contains(.rollBack(generation: 1, exit: .exited(2), reason: "exited with status 2 before it was ready")))
        #expect(actions.last == .spawnChild(generation: 2))
        _ = machine.handle(.childSpawned(generation: 2))
        // The previous binary fails too: overseerd exits the way the first child did.
        #expect(machine.handle(.childExited(generation: 2, .exited(3))).last == .exit(.exited(2)))
    }

    @Test func spawnFailureRollsBack() {
        var machine = Self.starting()
        let actions = machine.handle(.childSpawnFailed(generation: 1, exitCode: 126, reason: "cannot run"))
        #expect(actions.contains(.rollBack(generation: 1, exit: .exited(126), reason: "could not start: cannot run")))
        #expect(actions.last == .spawnChild(generation: 2))
    }

    @Test func readyStartsTheProbationTimer() {
        var machine = Self.starting()
        _ = machine.handle(.childSpawned(generation: 1))
        let actions = machine.handle(.childReady(generation: 1))
        #expect(actions.contains(.startTimer(.probation(generation: 1), after: .seconds(30))))
        #expect(machine.probation == 1)
        #expect(machine.handle(.childExited(generation: 1, .exited(9))).contains(.rollBack(generation: 1, exit: .exited(9), reason: "exited with status 9")))
    }

    @Test func withoutProbationItIsIgnored() {
        var machine = Supervision(settings: .init(probation: .zero))
        _ = machine.handle(.firstGenerationOnProbation)
        _ = machine.handle(.started)
        _ = machine.handle(.childSpawned(generation: 1))
        #expect(machine.handle(.childExited(generation: 1, .exited(2))).last == .exit(.exited(2)))
    }
}

/// The state file's text.
@Suite struct UpgradeStateTests {
    static let a = String(repeating: "a", count: 64)
    static let b = String(repeating: "b", count: 64)

    @Test func roundTrip() throws {
        let state = UpgradeState(rejected: [Self.a, Self.b], probation: .init(sha256: Self.a, since: 1_700_000_000), previous: Self.b)
        #expect(try UpgradeState(parsing: state.encoded) == state)
        #expect(try UpgradeState(parsing: UpgradeState().encoded) == UpgradeState())
    }

    @Test(arguments: ["", "garbage\n", "overseerd-state 2\n", "overseerd-state 1\nrejected xyz\n",
                      "overseerd-state 1\nprobation \(String(repeating: "a", count: 64)) soon\n", "overseerd-state 1\nwhat ever\n"])
    func corruptOrForeignFilesAreRefused(text: String) {
        #expect(throws: ConfigurationError.self) { try UpgradeState(parsing: text) }
    }
}

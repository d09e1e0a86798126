import Glibc
import OverseerCore
import Testing

private typealias Action = Supervision.Action
private let notifySettings = Supervision.Settings(
    readiness: .notify, readyTimeout: .seconds(60), stopSignal: SIGTERM, stopTimeout: .seconds(30))
private let delaySettings = Supervision.Settings(
    readiness: .delay(.seconds(1)), readyTimeout: .seconds(60), stopSignal: SIGTERM, stopTimeout: .seconds(30))

/// The actions without the log lines.
private func effects(_ actions: [Action]) -> [Action] {
    actions.filter { if case .log = $0 { return false } else { return true } }
}

private func logs(_ actions: [Action]) -> [String] {
    actions.compactMap { if case let .log(line) = $0 { return line.message } else { return nil } }
}

/// Generation 1 started and ready.
private func servingFirst(_ settings: Supervision.Settings = notifySettings) -> Supervision {
    var machine = Supervision(settings: settings)
    _ = machine.handle(.started)
    _ = machine.handle(.childSpawned(generation: 1))
    _ = machine.handle(.childReady(generation: 1))
    return machine
}

/// Generation 1 serving, generation 2 spawned and not ready yet.
private func restarting(_ settings: Supervision.Settings = notifySettings) -> Supervision {
    var machine = servingFirst(settings)
    _ = machine.handle(.restartRequested(reason: "SIGUSR2"))
    _ = machine.handle(.childSpawned(generation: 2))
    return machine
}

/// Generation 2 serving, generation 1 asked to stop and still running.
private func draining() -> Supervision {
    var machine = restarting()
    _ = machine.handle(.childReady(generation: 2))
    return machine
}

@Suite struct FirstStartTests {
    @Test func readyByNotify() {
        var machine = Supervision(settings: notifySettings)
        #expect(machine.handle(.started) == [.spawnChild(generation: 1)])
        #expect(machine.candidate == 1)
        #expect(machine.serving == nil)
        #expect(machine.handle(.childSpawned(generation: 1)) == [
            .startTimer(.readyTimeout(generation: 1), after: .seconds(60)),
        ])
        #expect(machine.handle(.childReady(generation: 1)) == [
            .cancelTimer(.readyTimeout(generation: 1)),
            .log(.info, .generationReady, "generation 1 is ready", generation: 1),
            .report(.ready(generation: 1, restartSucceeded: nil)),
        ])
        #expect(machine.serving == 1)
        #expect(machine.candidate == nil)
        #expect(machine.liveGenerations == [1])
        // READY=1 again is nothing new.
        #expect(machine.handle(.childReady(generation: 1)) == [])
    }

    @Test func readyByDelay() {
        var machine = Supervision(settings: delaySettings)
        _ = machine.handle(.started)
        #expect(machine.handle(.childSpawned(generation: 1)) == [
            .startTimer(.readyTimeout(generation: 1), after: .seconds(60)),
            .startTimer(.readyDelay(generation: 1), after: .seconds(1)),
        ])
        #expect(machine.handle(.timerFired(.readyDelay(generation: 1))) == [
            .cancelTimer(.readyTimeout(generation: 1)),
            .cancelTimer(.readyDelay(generation: 1)),
            .log(.info, .generationReady, "generation 1 is ready", generation: 1),
            .report(.ready(generation: 1, restartSucceeded: nil)),
        ])
        #expect(machine.serving == 1)
        #expect(machine.handle(.childReady(generation: 1)) == [])
        #expect(machine.handle(.timerFired(.readyDelay(generation: 1))) == [])
    }

    @Test func notifyBeatsTheDelay() {
        var machine = Supervision(settings: delaySettings)
        _ = machine.handle(.started)
        _ = machine.handle(.childSpawned(generation: 1))
        #expect(effects(machine.handle(.childReady(generation: 1))) == [
            .cancelTimer(.readyTimeout(generation: 1)),
            .cancelTimer(.readyDelay(generation: 1)),
            .report(.ready(generation: 1, restartSucceeded: nil)),
        ])
        // The delay timer, had it fired anyway, changes nothing.
        #expect(machine.handle(.timerFired(.readyDelay(generation: 1))) == [])
    }

    @Test func neverReady() {
        var machine = Supervision(settings: notifySettings)
        _ = machine.handle(.started)
        _ = machine.handle(.childSpawned(generation: 1))
        #expect(machine.handle(.timerFired(.readyTimeout(generation: 1))) == [
            .log(.error, .readyTimeout, "generation 1 was not ready after 1m (--ready-timeout); stopping it", generation: 1),
            .signalChild(generation: 1, signal: SIGTERM),
            .startTimer(.stopTimeout(generation: 1), after: .seconds(30)),
            .report(.stopping),
        ])
        #expect(machine.candidate == nil)
        #expect(machine.isStopping(1))
        // Too late now.
        #expect(machine.handle(.childReady(generation: 1)) == [])
        #expect(machine.handle(.restartRequested(reason: "SIGUSR2")) == [
            .log(.info, .restartIgnored, "restart (SIGUSR2) ignored: overseerd is stopping"),
        ])
        #expect(machine.handle(.timerFired(.stopTimeout(generation: 1))) == [
            .log(.warning, .stopTimeout, "generation 1 did not stop within 30s; sending SIGKILL", generation: 1),
            .killGeneration(generation: 1),
        ])
        #expect(machine.handle(.childExited(generation: 1, .killed(signal: SIGKILL))) == [
            .cancelTimer(.readyTimeout(generation: 1)),
            .cancelTimer(.stopTimeout(generation: 1)),
            .log(.info, .generationStopped, "generation 1 exited with signal SIGKILL", generation: 1),
            .exit(.exited(69)),
        ])
        #expect(machine.liveGenerations == [])
    }

    @Test func neverReadyWithDelayCancelsTheDelayTimer() {
        var machine = Supervision(settings: Supervision.Settings(readiness: .delay(.seconds(5)), readyTimeout: .seconds(2)))
        _ = machine.handle(.started)
        _ = machine.handle(.childSpawned(generation: 1))
        let actions = machine.handle(.timerFired(.readyTimeout(generation: 1)))
        #expect(actions.first == .cancelTimer(.readyDelay(generation: 1)))
        #expect(logs(actions) == ["generation 1 was not ready after 2s (--ready-timeout); stopping it"])
        // The delay timer must not make a stopping child ready.
        #expect(machine.handle(.timerFired(.readyDelay(generation: 1))) == [])
        #expect(machine.serving == nil)
        #expect(effects(machine.handle(.childExited(generation: 1, .exited(0)))).last == .exit(.exited(69)))
    }

    @Test(arguments: [ProcessExit.exited(3), .exited(0), .killed(signal: SIGSEGV)])
    func exitsBeforeReady(_ status: ProcessExit) {
        var machine = Supervision(settings: notifySettings)
        _ = machine.handle(.started)
        _ = machine.handle(.childSpawned(generation: 1))
        #expect(machine.handle(.childExited(generation: 1, status)) == [
            .cancelTimer(.readyTimeout(generation: 1)),
            .log(.notice, .generationExited, "generation 1 exited with \(status) before it was ready", generation: 1),
            .exit(status),
        ])
    }

    @Test(arguments: [Int32(127), 126, 71])
    func spawnFails(_ code: Int32) {
        var machine = Supervision(settings: notifySettings)
        _ = machine.handle(.started)
        #expect(machine.handle(.childSpawnFailed(generation: 1, exitCode: code, reason: "overseerd: cannot run app")) == [
            .log(.error, .spawnFailed, "overseerd: cannot run app", generation: 1),
            .exit(.exited(code)),
        ])
        #expect(machine.liveGenerations == [])
    }

    @Test func restartRequestedBeforeFirstReadyIsQueued() {
        var machine = Supervision(settings: notifySettings)
        _ = machine.handle(.started)
        _ = machine.handle(.childSpawned(generation: 1))
        #expect(machine.handle(.restartRequested(reason: "SIGUSR2")) == [
            .log(.info, .restartQueued, "restart (SIGUSR2) queued: generation 1 is still starting"),
        ])
        #expect(machine.restartQueued)
        #expect(machine.handle(.childReady(generation: 1)) == [
            .cancelTimer(.readyTimeout(generation: 1)),
            .log(.info, .generationReady, "generation 1 is ready", generation: 1),
            .report(.ready(generation: 1, restartSucceeded: nil)),
            .log(.notice, .restartStarted, "queued restart: starting generation 2", generation: 2),
            .report(.reloading),
            .spawnChild(generation: 2),
        ])
        #expect(!machine.restartQueued)
        #expect(machine.serving == 1)
        #expect(machine.candidate == 2)
    }

    @Test func queuedRestartDiesWithAFirstChildThatFails() {
        var machine = Supervision(settings: notifySettings)
        _ = machine.handle(.started)
        _ = machine.handle(.childSpawned(generation: 1))
        _ = machine.handle(.restartRequested(reason: "SIGUSR2"))
        let actions = machine.handle(.childExited(generation: 1, .exited(1)))
        #expect(effects(actions) == [.cancelTimer(.readyTimeout(generation: 1)), .exit(.exited(1))])
        #expect(!machine.restartQueued)
    }

    @Test func signalsGoToTheCandidateBeforeItIsReady() {
        var machine = Supervision(settings: notifySettings)
        #expect(machine.handle(.signalReceived(SIGHUP)) == [.log(.debug, .signalNotForwarded, "SIGHUP not forwarded: no generation is serving")])
        _ = machine.handle(.started)
        _ = machine.handle(.childSpawned(generation: 1))
        #expect(machine.handle(.signalReceived(SIGHUP)) == [.signalChild(generation: 1, signal: SIGHUP)])
    }
}

@Suite struct RestartTests {
    @Test func happyPath() {
        var machine = servingFirst()
        #expect(machine.handle(.restartRequested(reason: "SIGUSR2")) == [
            .log(.notice, .restartStarted, "restart (SIGUSR2): starting generation 2", generation: 2),
            .report(.reloading),
            .spawnChild(generation: 2),
        ])
        #expect(machine.serving == 1)
        #expect(machine.candidate == 2)
        // Nothing happens to generation 1 while 2 is starting.
        #expect(machine.handle(.childSpawned(generation: 2)) == [
            .startTimer(.readyTimeout(generation: 2), after: .seconds(60)),
        ])
        #expect(!machine.isStopping(1))
        #expect(machine.handle(.childReady(generation: 2)) == [
            .cancelTimer(.readyTimeout(generation: 2)),
            .log(.notice, .restartSucceeded, "generation 2 is ready; stopping generation 1", generation: 2),
            .signalChild(generation: 1, signal: SIGTERM),
            .startTimer(.stopTimeout(generation: 1), after: .seconds(30)),
            .report(.ready(generation: 2, restartSucceeded: true)),
        ])
        #expect(machine.serving == 2)
        #expect(machine.candidate == nil)
        #expect(machine.isStopping(1))
        #expect(!machine.isStopping(2))
        #expect(machine.liveGenerations == [1, 2])
        #expect(machine.handle(.timerFired(.stopTimeout(generation: 1))) == [
            .log(.warning, .stopTimeout, "generation 1 did not stop within 30s; sending SIGKILL", generation: 1),
            .killGeneration(generation: 1),
        ])
        // The old generation's exit is reaped; overseerd goes on.
        #expect(machine.handle(.childExited(generation: 1, .killed(signal: SIGKILL))) == [
            .cancelTimer(.readyTimeout(generation: 1)),
            .cancelTimer(.stopTimeout(generation: 1)),
            .log(.info, .generationStopped, "generation 1 stopped (signal SIGKILL)", generation: 1),
        ])
        #expect(machine.liveGenerations == [2])
        #expect(machine.serving == 2)
        // And the next restart works the same way.
        #expect(effects(machine.handle(.restartRequested(reason: "upgrade"))) == [
            .report(.reloading), .spawnChild(generation: 3),
        ])
    }

    @Test func oldStopsOnItsOwnBeforeTheStopTimeout() {
        var machine = draining()
        #expect(effects(machine.handle(.childExited(generation: 1, .exited(0)))) == [
            .cancelTimer(.readyTimeout(generation: 1)),
            .cancelTimer(.stopTimeout(generation: 1)),
        ])
        // Its stop timer, if it fired anyway, is for a generation that is gone.
        #expect(machine.handle(.timerFired(.stopTimeout(generation: 1))) == [])
    }

    @Test func customStopSignalAndTimeout() {
        var machine = servingFirst(Supervision.Settings(readiness: .notify, readyTimeout: .seconds(5),
                                                        stopSignal: SIGQUIT, stopTimeout: .milliseconds(1500)))
        _ = machine.handle(.restartRequested(reason: "x"))
        #expect(machine.handle(.childSpawned(generation: 2)) == [.startTimer(.readyTimeout(generation: 2), after: .seconds(5))])
        let actions = machine.handle(.childReady(generation: 2))
        #expect(actions.contains(.signalChild(generation: 1, signal: SIGQUIT)))
        #expect(actions.contains(.startTimer(.stopTimeout(generation: 1), after: .milliseconds(1500))))
        #expect(logs(machine.handle(.timerFired(.stopTimeout(generation: 1)))) == [
            "generation 1 did not stop within 1.5s; sending SIGKILL",
        ])
    }

    @Test func readyByDelayDuringRestart() {
        var machine = servingFirst(delaySettings)
        _ = machine.handle(.restartRequested(reason: "x"))
        #expect(machine.handle(.childSpawned(generation: 2)) == [
            .startTimer(.readyTimeout(generation: 2), after: .seconds(60)),
            .startTimer(.readyDelay(generation: 2), after: .seconds(1)),
        ])
        #expect(effects(machine.handle(.timerFired(.readyDelay(generation: 2)))) == [
            .cancelTimer(.readyTimeout(generation: 2)),
            .cancelTimer(.readyDelay(generation: 2)),
            .signalChild(generation: 1, signal: SIGTERM),
            .startTimer(.stopTimeout(generation: 1), after: .seconds(30)),
            .report(.ready(generation: 2, restartSucceeded: true)),
        ])
        // The old generation's delay timer, long gone, does not make it serve again.
        #expect(machine.handle(.timerFired(.readyDelay(generation: 1))) == [])
        #expect(effects(machine.handle(.childExited(generation: 1, .exited(0)))) == [
            .cancelTimer(.readyTimeout(generation: 1)),
            .cancelTimer(.readyDelay(generation: 1)),
            .cancelTimer(.stopTimeout(generation: 1)),
        ])
    }

    @Test func failsByExitBeforeReady() {
        var machine = restarting()
        #expect(machine.handle(.childExited(generation: 2, .exited(1))) == [
            .cancelTimer(.readyTimeout(generation: 2)),
            .log(.error, .restartFailed, "restart failed: generation 2 exited with status 1 before ready; generation 1 keeps serving", generation: 2),
            .report(.ready(generation: 1, restartSucceeded: false)),
        ])
        #expect(machine.serving == 1)
        #expect(machine.candidate == nil)
        #expect(!machine.isStopping(1))
        #expect(machine.liveGenerations == [1])
        // A later restart is a fresh one, with the next number.
        #expect(effects(machine.handle(.restartRequested(reason: "again"))) == [.report(.reloading), .spawnChild(generation: 3)])
    }

    @Test func failsByReadyTimeout() {
        var machine = restarting()
        #expect(machine.handle(.timerFired(.readyTimeout(generation: 2))) == [
            .log(.error, .restartFailed, "restart failed: generation 2 was not ready after 1m; generation 1 keeps serving", generation: 2),
            .signalChild(generation: 2, signal: SIGTERM),
            .startTimer(.stopTimeout(generation: 2), after: .seconds(30)),
            .report(.ready(generation: 1, restartSucceeded: false)),
        ])
        #expect(machine.serving == 1)
        #expect(machine.candidate == nil)
        #expect(machine.isStopping(2))
        // Its READY=1 comes too late.
        #expect(machine.handle(.childReady(generation: 2)) == [])
        #expect(machine.serving == 1)
        #expect(machine.handle(.childExited(generation: 2, .killed(signal: SIGTERM))) == [
            .cancelTimer(.readyTimeout(generation: 2)),
            .cancelTimer(.stopTimeout(generation: 2)),
            .log(.debug, .generationStopped, "failed generation 2 reaped (signal SIGTERM)", generation: 2),
        ])
        #expect(machine.liveGenerations == [1])
    }

    @Test func failsBySpawnFailure() {
        var machine = servingFirst()
        _ = machine.handle(.restartRequested(reason: "SIGUSR2"))
        #expect(machine.handle(.childSpawnFailed(generation: 2, exitCode: 126, reason: "cannot execute /app")) == [
            .log(.error, .restartFailed, "restart failed: generation 2 could not start: cannot execute /app; generation 1 keeps serving", generation: 2),
            .report(.ready(generation: 1, restartSucceeded: false)),
        ])
        #expect(machine.serving == 1)
        #expect(machine.candidate == nil)
        #expect(machine.liveGenerations == [1])
    }

    @Test func twentyRequestsDuringARestartMakeOneMoreGeneration() {
        var machine = restarting()
        var all: [Action] = []
        for index in 1 ... 20 {
            let actions = machine.handle(.restartRequested(reason: "request \(index)"))
            #expect(effects(actions) == [])
            all += actions
        }
        #expect(logs(all).first == "restart (request 1) queued: generation 2 is still starting")
        #expect(logs(all).dropFirst().allSatisfy { $0.hasSuffix("coalesced with the queued one") })
        #expect(machine.restartQueued)
        let ready = machine.handle(.childReady(generation: 2))
        #expect(effects(ready) == [
            .cancelTimer(.readyTimeout(generation: 2)),
            .signalChild(generation: 1, signal: SIGTERM),
            .startTimer(.stopTimeout(generation: 1), after: .seconds(30)),
            .report(.ready(generation: 2, restartSucceeded: true)),
            .report(.reloading),
            .spawnChild(generation: 3),
        ])
        #expect(!machine.restartQueued)
        _ = machine.handle(.childSpawned(generation: 3))
        let readyAgain = machine.handle(.childReady(generation: 3))
        #expect(!readyAgain.contains { if case .spawnChild = $0 { true } else { false } })
        #expect(readyAgain.contains(.signalChild(generation: 2, signal: SIGTERM)))
        #expect(machine.serving == 3)
        #expect(machine.candidate == nil)
        #expect(machine.liveGenerations == [1, 2, 3])
    }

    @Test func queuedRestartRunsAfterAFailedOne() {
        var machine = restarting()
        _ = machine.handle(.restartRequested(reason: "again"))
        #expect(effects(machine.handle(.childExited(generation: 2, .exited(1)))) == [
            .cancelTimer(.readyTimeout(generation: 2)),
            .report(.ready(generation: 1, restartSucceeded: false)),
            .report(.reloading),
            .spawnChild(generation: 3),
        ])
        #expect(machine.candidate == 3)
    }

    @Test func lateReadyFromAnOldGenerationIsIgnored() {
        var machine = draining()
        #expect(machine.handle(.childReady(generation: 1)) == [])
        #expect(machine.handle(.childReady(generation: 99)) == [])
        #expect(machine.serving == 2)
        #expect(machine.isStopping(1))
    }

    @Test func timersOfGoneGenerationsAreIgnored() {
        var machine = draining()
        _ = machine.handle(.childExited(generation: 1, .exited(0)))
        for timer in [Supervision.Timer.readyTimeout(generation: 1), .readyDelay(generation: 1), .stopTimeout(generation: 1),
                      .readyTimeout(generation: 7), .stopTimeout(generation: 7)] {
            #expect(machine.handle(.timerFired(timer)) == [])
        }
        // Timers that do not fit the generation's phase are ignored too.
        #expect(machine.handle(.timerFired(.readyTimeout(generation: 2))) == [])
        #expect(machine.handle(.timerFired(.stopTimeout(generation: 2))) == [])
        #expect(machine.serving == 2)
    }

    @Test func strayEventsAreIgnored() {
        var machine = draining()
        #expect(machine.handle(.childSpawned(generation: 2)) == [])
        #expect(machine.handle(.childSpawned(generation: 5)) == [])
        #expect(machine.handle(.childSpawnFailed(generation: 2, exitCode: 127, reason: "x")) == [])
        #expect(machine.handle(.childExited(generation: 5, .exited(0))) == [])
        #expect(machine.serving == 2)
        #expect(machine.liveGenerations == [1, 2])
    }

    @Test func otherSignalsGoToTheServingGeneration() {
        var machine = restarting()
        #expect(machine.handle(.signalReceived(SIGHUP)) == [.signalChild(generation: 1, signal: SIGHUP)])
        _ = machine.handle(.childReady(generation: 2))
        #expect(machine.handle(.signalReceived(SIGHUP)) == [.signalChild(generation: 2, signal: SIGHUP)])
        #expect(machine.handle(.signalReceived(SIGWINCH)) == [.signalChild(generation: 2, signal: SIGWINCH)])
    }
}

@Suite struct StopTests {
    @Test(arguments: [ProcessExit.exited(0), .exited(4), .killed(signal: SIGTERM)])
    func whileIdle(_ status: ProcessExit) {
        var machine = servingFirst()
        #expect(machine.handle(.stopRequested(signal: SIGTERM)) == [
            .log(.info, .stopping, "SIGTERM received: stopping the child"),
            .report(.stopping),
            .signalChild(generation: 1, signal: SIGTERM),
            .startTimer(.stopTimeout(generation: 1), after: .seconds(30)),
        ])
        #expect(machine.isStopping(1))
        #expect(machine.handle(.restartRequested(reason: "SIGUSR2")) == [
            .log(.info, .restartIgnored, "restart (SIGUSR2) ignored: overseerd is stopping"),
        ])
        #expect(machine.handle(.childExited(generation: 1, status)) == [
            .cancelTimer(.readyTimeout(generation: 1)),
            .cancelTimer(.stopTimeout(generation: 1)),
            .log(.info, .generationStopped, "generation 1 exited with \(status)", generation: 1),
            .exit(status),
        ])
    }

    @Test func theReceivedSignalIsForwardedNotTheStopSignal() {
        var machine = servingFirst(Supervision.Settings(readiness: .notify, stopSignal: SIGQUIT))
        let actions = machine.handle(.stopRequested(signal: SIGINT))
        #expect(actions.contains(.signalChild(generation: 1, signal: SIGINT)))
        #expect(!actions.contains(.signalChild(generation: 1, signal: SIGQUIT)))
        #expect(logs(actions) == ["SIGINT received: stopping the child"])
    }

    @Test func secondSignalIsForwardedAgain() {
        var machine = servingFirst()
        _ = machine.handle(.stopRequested(signal: SIGTERM))
        #expect(machine.handle(.stopRequested(signal: SIGTERM)) == [.signalChild(generation: 1, signal: SIGTERM)])
        #expect(machine.handle(.stopRequested(signal: SIGINT)) == [.signalChild(generation: 1, signal: SIGINT)])
        #expect(machine.handle(.timerFired(.stopTimeout(generation: 1))) == [
            .log(.warning, .stopTimeout, "generation 1 did not stop within 30s; sending SIGKILL", generation: 1),
            .killGeneration(generation: 1),
        ])
        #expect(effects(machine.handle(.childExited(generation: 1, .killed(signal: SIGKILL)))).last
            == .exit(.killed(signal: SIGKILL)))
    }

    @Test(arguments: [true, false])
    func duringRestartEveryGenerationGetsItAndTheServingOneGivesTheStatus(servingExitsFirst: Bool) {
        var machine = restarting()
        #expect(machine.handle(.stopRequested(signal: SIGTERM)) == [
            .log(.info, .stopping, "SIGTERM received: stopping all 2 generations"),
            .report(.stopping),
            .signalChild(generation: 1, signal: SIGTERM),
            .startTimer(.stopTimeout(generation: 1), after: .seconds(30)),
            .signalChild(generation: 2, signal: SIGTERM),
            .startTimer(.stopTimeout(generation: 2), after: .seconds(30)),
        ])
        // The candidate can no longer take over, nor time out into a second shutdown.
        #expect(machine.handle(.childReady(generation: 2)) == [])
        #expect(machine.handle(.timerFired(.readyTimeout(generation: 2))) == [])
        let order: [(Int, ProcessExit)] = servingExitsFirst
            ? [(1, .exited(3)), (2, .exited(0))]
            : [(2, .exited(0)), (1, .exited(3))]
        #expect(!machine.handle(.childExited(generation: order[0].0, order[0].1)).contains { if case .exit = $0 { true } else { false } })
        #expect(machine.handle(.childExited(generation: order[1].0, order[1].1)).last == .exit(.exited(3)))
    }

    @Test func beforeTheFirstChildIsReadyItsStatusCounts() {
        var machine = Supervision(settings: notifySettings)
        _ = machine.handle(.started)
        _ = machine.handle(.childSpawned(generation: 1))
        #expect(effects(machine.handle(.stopRequested(signal: SIGINT))) == [
            .report(.stopping),
            .signalChild(generation: 1, signal: SIGINT),
            .startTimer(.stopTimeout(generation: 1), after: .seconds(30)),
        ])
        #expect(machine.handle(.childReady(generation: 1)) == [])
        #expect(machine.handle(.timerFired(.readyTimeout(generation: 1))) == [])
        #expect(machine.handle(.childExited(generation: 1, .killed(signal: SIGINT))).last == .exit(.killed(signal: SIGINT)))
    }

    @Test(arguments: [true, false])
    func duringDrain(newExitsFirst: Bool) {
        var machine = draining()
        // Generation 1 already has its stop timer; only generation 2 gets one now.
        #expect(machine.handle(.stopRequested(signal: SIGTERM)) == [
            .log(.info, .stopping, "SIGTERM received: stopping all 2 generations"),
            .report(.stopping),
            .signalChild(generation: 1, signal: SIGTERM),
            .signalChild(generation: 2, signal: SIGTERM),
            .startTimer(.stopTimeout(generation: 2), after: .seconds(30)),
        ])
        let order: [(Int, ProcessExit)] = newExitsFirst
            ? [(2, .exited(5)), (1, .killed(signal: SIGTERM))]
            : [(1, .killed(signal: SIGTERM)), (2, .exited(5))]
        #expect(machine.handle(.childExited(generation: order[0].0, order[0].1)).last != .exit(.exited(5)))
        #expect(machine.handle(.childExited(generation: order[1].0, order[1].1)).last == .exit(.exited(5)))
    }

    @Test func beforeStartExitsAtOnce() {
        var machine = Supervision(settings: notifySettings)
        #expect(effects(machine.handle(.stopRequested(signal: SIGTERM))) == [.report(.stopping), .exit(.exited(0))])
    }
}

@Suite struct ServingExitTests {
    @Test(arguments: [ProcessExit.exited(2), .exited(0), .killed(signal: SIGSEGV)])
    func whileIdleExitsWithItsStatus(_ status: ProcessExit) {
        var machine = servingFirst()
        #expect(machine.handle(.childExited(generation: 1, status)) == [
            .cancelTimer(.readyTimeout(generation: 1)),
            .log(.notice, .generationExited, "generation 1 exited with \(status)", generation: 1),
            .exit(status),
        ])
    }

    @Test func drainingGenerationsAreWaitedForFirst() {
        var machine = draining()
        #expect(machine.handle(.childExited(generation: 2, .killed(signal: SIGSEGV))) == [
            .cancelTimer(.readyTimeout(generation: 2)),
            .log(.notice, .generationExited, "generation 2 exited with signal SIGSEGV", generation: 2),
            .report(.stopping),
            .log(.info, .stopping, "waiting for 1 stopping generation(s) before exiting"),
        ])
        #expect(machine.serving == nil)
        #expect(effects(machine.handle(.restartRequested(reason: "x"))) == [])
        #expect(machine.handle(.signalReceived(SIGHUP)) == [.log(.debug, .signalNotForwarded, "SIGHUP not forwarded: no generation is serving")])
        #expect(effects(machine.handle(.childExited(generation: 1, .exited(0)))) == [
            .cancelTimer(.readyTimeout(generation: 1)),
            .cancelTimer(.stopTimeout(generation: 1)),
            .exit(.killed(signal: SIGSEGV)),
        ])
    }

    @Test func duringRestartTheCandidateTakesOverWhenReady() {
        var machine = restarting()
        #expect(machine.handle(.childExited(generation: 1, .exited(9))) == [
            .cancelTimer(.readyTimeout(generation: 1)),
            .log(.warning, .generationExited, "generation 1 exited with status 9 while generation 2 is starting; waiting for 2", generation: 1),
        ])
        #expect(machine.serving == nil)
        #expect(machine.candidate == 2)
        // With none serving, signals go to the candidate.
        #expect(machine.handle(.signalReceived(SIGHUP)) == [.signalChild(generation: 2, signal: SIGHUP)])
        #expect(machine.handle(.childReady(generation: 2)) == [
            .cancelTimer(.readyTimeout(generation: 2)),
            .log(.notice, .generationReady, "generation 2 is ready and serving", generation: 2),
            .report(.ready(generation: 2, restartSucceeded: true)),
        ])
        #expect(machine.serving == 2)
        // The earlier status is forgotten: 2's own exit decides.
        #expect(machine.handle(.childExited(generation: 2, .exited(0))).last == .exit(.exited(0)))
    }

    @Test func duringRestartTheCandidateFailsByExit() {
        var machine = restarting()
        _ = machine.handle(.childExited(generation: 1, .exited(9)))
        #expect(machine.handle(.childExited(generation: 2, .exited(1))) == [
            .cancelTimer(.readyTimeout(generation: 2)),
            .log(.error, .generationExited, "generation 2 exited with status 1 before ready; nothing is serving", generation: 2),
            .exit(.exited(9)),
        ])
    }

    @Test func duringRestartTheCandidateFailsByReadyTimeout() {
        var machine = restarting()
        _ = machine.handle(.childExited(generation: 1, .killed(signal: SIGKILL)))
        #expect(machine.handle(.timerFired(.readyTimeout(generation: 2))) == [
            .log(.error, .readyTimeout, "generation 2 was not ready after 1m (--ready-timeout); nothing is serving; stopping it", generation: 2),
            .signalChild(generation: 2, signal: SIGTERM),
            .startTimer(.stopTimeout(generation: 2), after: .seconds(30)),
            .report(.stopping),
        ])
        #expect(machine.handle(.childExited(generation: 2, .killed(signal: SIGTERM))).last == .exit(.killed(signal: SIGKILL)))
    }

    @Test func duringRestartTheCandidateCannotSpawn() {
        var machine = servingFirst()
        _ = machine.handle(.restartRequested(reason: "x"))
        // The serving child dies before the spawn's result is known.
        _ = machine.handle(.childExited(generation: 1, .exited(9)))
        #expect(machine.handle(.childSpawnFailed(generation: 2, exitCode: 127, reason: "not found")) == [
            .log(.error, .spawnFailed, "generation 2 could not start: not found; nothing is serving", generation: 2),
            .exit(.exited(9)),
        ])
    }

    @Test func aQueuedRestartRunsAfterTheCandidateTookOver() {
        var machine = restarting()
        _ = machine.handle(.childExited(generation: 1, .exited(9)))
        _ = machine.handle(.restartRequested(reason: "x"))
        #expect(effects(machine.handle(.childReady(generation: 2))) == [
            .cancelTimer(.readyTimeout(generation: 2)),
            .report(.ready(generation: 2, restartSucceeded: true)),
            .report(.reloading),
            .spawnChild(generation: 3),
        ])
    }
}

import Glibc
@testable import OverseerCore
import Testing

/// A `Supervision` whose events also go to `RestartMetrics`, at times the test chooses (ms).
private struct Observed {
    var machine = Supervision(settings: .init(readiness: .notify, readyTimeout: .seconds(60), stopSignal: SIGTERM,
                                              stopTimeout: .seconds(30)))
    var metrics = RestartMetrics()

    /// Generation 1 spawned at 0 and ready at `readyAt` ms.
    static func serving(readyAt: Int64 = 0) -> Observed {
        var run = Observed()
        run.at(0, .started)
        run.at(0, .childSpawned(generation: 1))
        run.at(readyAt, .childReady(generation: 1))
        return run
    }

    mutating func at(_ milliseconds: Int64, _ event: Supervision.Event) {
        let actions = machine.handle(event)
        metrics.observe(event, actions: actions, restartQueued: machine.restartQueued, now: milliseconds * 1_000_000)
    }
}

@Suite struct RestartMetricsTests {
    @Test func aRestartLastsFromTheNewSpawnToTheOldGenerationsExit() {
        var run = Observed()
        run.at(0, .started)
        run.at(1, .childSpawned(generation: 1))
        run.at(21, .childReady(generation: 1))
        #expect(run.metrics.readiness[1] == 0.021)  // from the spawn action at 0
        run.at(1000, .restartRequested(reason: "test"))
        run.at(1001, .childSpawned(generation: 2))
        run.at(1050, .childReady(generation: 2))
        #expect(run.metrics.succeeded == 1)
        #expect(run.metrics.lastRestartDuration == nil)  // generation 1 is still stopping
        #expect(run.metrics.restartDurations.count == 0)
        run.at(1250, .childExited(generation: 1, .killed(signal: SIGTERM)))
        #expect(run.metrics.lastRestartDuration == 0.25)
        #expect(run.metrics.restartDurations.count == 1)
        #expect(run.metrics.restartDurations.sum == 0.25)
        #expect(run.metrics.readyDurations.count == 2)
        #expect(run.metrics.readiness[2] == 0.050)
        #expect(run.metrics.readiness[1] == nil)  // gone with its generation
        #expect(run.metrics.killedBySignal == 1)
        #expect(run.metrics.exitedWithStatus == 0)
        #expect(run.metrics.failed == 0)
    }

    @Test func aCandidateThatExitsMakesAFailedRestartEndingThen() {
        var run = Observed.serving(readyAt: 10)
        run.at(100, .restartRequested(reason: "test"))
        run.at(100, .childSpawned(generation: 2))
        run.at(400, .childExited(generation: 2, .exited(3)))
        #expect(run.metrics.failed == 1)
        #expect(run.metrics.succeeded == 0)
        #expect(run.metrics.lastRestartDuration == 0.3)
        #expect(run.metrics.exitedWithStatus == 1)
        #expect(run.metrics.readyDurations.count == 1)  // the failed candidate was never ready
    }

    @Test func aSpawnFailureAndAReadyTimeoutAreFailedRestartsToo() {
        var run = Observed.serving(readyAt: 0)
        run.at(10, .restartRequested(reason: "test"))
        run.at(10, .childSpawnFailed(generation: 2, exitCode: 127, reason: "gone"))
        #expect(run.metrics.failed == 1)
        run.at(20, .restartRequested(reason: "test"))
        run.at(20, .childSpawned(generation: 3))
        run.at(60_020, .timerFired(.readyTimeout(generation: 3)))
        #expect(run.metrics.failed == 2)
        #expect(run.metrics.lastRestartDuration == 60)
        #expect(run.metrics.restartDurations.count == 2)
        run.at(60_100, .childExited(generation: 3, .killed(signal: SIGTERM)))
        #expect(run.metrics.generationsKept == 1, "only the serving generation 1 is remembered")
    }

    @Test func aQueuedRestartIsTimedFromItsFirstRequest() {
        var run = Observed.serving()
        run.at(100, .restartRequested(reason: "first"))
        run.at(100, .childSpawned(generation: 2))
        run.at(150, .restartRequested(reason: "queued"))
        run.at(170, .restartRequested(reason: "merged into it"))
        run.at(200, .childReady(generation: 2))  // runs the queued one: generation 3
        run.at(200, .childSpawned(generation: 3))
        run.at(210, .childExited(generation: 1, .exited(0)))
        #expect(run.metrics.lastRestartDuration == 0.11)  // 100 → 210
        run.at(300, .childReady(generation: 3))
        run.at(400, .childExited(generation: 2, .exited(0)))
        #expect(run.metrics.lastRestartDuration == 0.25)  // 150 → 400
        #expect(run.metrics.succeeded == 2)
        // A restart asked for later, with nothing queued, is timed from its own request.
        run.at(1000, .restartRequested(reason: "later"))
        run.at(1000, .childSpawned(generation: 4))
        run.at(1010, .childReady(generation: 4))
        run.at(1020, .childExited(generation: 3, .exited(0)))
        #expect(run.metrics.lastRestartDuration == 0.02)
    }

    @Test func theFirstGenerationIsNoRestart() {
        var run = Observed()
        run.at(0, .started)
        run.at(0, .childSpawned(generation: 1))
        run.at(5, .childReady(generation: 1))
        #expect(run.metrics.succeeded == 0 && run.metrics.failed == 0)
        #expect(run.metrics.readyDurations.count == 1)
    }
}

@Suite struct UpgradeMetricsTests {
    let installed = String(repeating: "a", count: 64)

    private func feed(_ cycle: inout UpgradeCycle, _ metrics: inout UpgradeMetrics, _ event: UpgradeCycle.Event, at now: Int64 = 0) {
        let before = cycle.state
        let actions = cycle.handle(event)
        metrics.observe(event, before: before, actions: actions, now: now)
    }

    @Test func countsInstallsRejectionsRollbacksAndPolls() {
        var cycle = UpgradeCycle(steps: [.checksum], interval: .seconds(60), restartAfterInstall: true)
        var metrics = UpgradeMetrics()
        let good = String(repeating: "b", count: 64), bad = String(repeating: "c", count: 64), worse = String(repeating: "d", count: 64)
        for event: UpgradeCycle.Event in [.pollDue, .fetched(sha256: good), .stepPassed(.checksum), .installed,
                                          .restartFinished(succeeded: true, reason: nil)] {
            feed(&cycle, &metrics, event)
        }
        for event: UpgradeCycle.Event in [.pollDue, .fetched(sha256: bad), .stepFailed(.checksum, reason: "no")] {
            feed(&cycle, &metrics, event)
        }
        // The rejected one again: a poll that found nothing new.
        feed(&cycle, &metrics, .pollDue)
        feed(&cycle, &metrics, .fetched(sha256: bad, known: .rejected))
        feed(&cycle, &metrics, .pollDue)
        feed(&cycle, &metrics, .unchanged)
        feed(&cycle, &metrics, .pollDue)
        feed(&cycle, &metrics, .fetchFailed(reason: "refused"), at: 7)
        for event: UpgradeCycle.Event in [.pollDue, .fetched(sha256: worse), .stepPassed(.checksum), .installed,
                                          .restartFinished(succeeded: false, reason: "not ready")] {
            feed(&cycle, &metrics, event)
        }
        // Rollbacks are BinaryLife's: counted when one ends (the failed restart's, a failed probation's).
        metrics.countRollback()
        metrics.countRollback()
        #expect(metrics.installed == 2)
        #expect(metrics.rejected == 1)
        #expect(metrics.rolledBack == 2)
        #expect(metrics.polls == [.new: 3, .unchanged: 2, .failed: 1])
        #expect(metrics.lastPoll?.result == .new)
    }

    @Test func eventsOutOfTurnCountNothing() {
        var cycle = UpgradeCycle(steps: [.checksum], interval: .seconds(60), restartAfterInstall: true)
        var metrics = UpgradeMetrics()
        feed(&cycle, &metrics, .installed)
        feed(&cycle, &metrics, .unchanged)
        feed(&cycle, &metrics, .stepFailed(.checksum, reason: "late"))
        #expect(metrics == UpgradeMetrics())
    }
}

@Suite struct MetricsTextTests {
    @Test func labelValuesAreEscapedAsTheFormatRequires() {
        #expect(MetricsText.escapeLabelValue(#"a\b"c"#) == #"a\\b\"c"#)
        #expect(MetricsText.escapeLabelValue("line\nbreak") == #"line\nbreak"#)
        #expect(MetricsText.escapeLabelValue("bell\u{7}\r\u{1b}[31m") == "bell\u{FFFD}\u{FFFD}\u{FFFD}[31m")
        #expect(MetricsText.escapeLabelValue("2.0.0-ünï") == "2.0.0-ünï")
    }

    @Test func longLabelValuesAreCutOnACharacterBoundary() {
        let cut = MetricsText.escapeLabelValue(String(repeating: "é", count: 200))
        #expect(cut.hasSuffix("…"))
        #expect(cut.dropLast().utf8.count == MetricsText.maximumLabelLength)
        // An escape is never split.
        let quotes = MetricsText.escapeLabelValue(String(repeating: "\"", count: 100))
        #expect(quotes.dropLast().utf8.count == MetricsText.maximumLabelLength)
        #expect(!quotes.dropLast().hasSuffix(#"\"#) || quotes.dropLast().hasSuffix(#"\""#))
    }

    @Test func numbersAreWrittenAsTheParserReadsThem() {
        #expect(MetricsText.format(3) == "3")
        #expect(MetricsText.format(0.005) == "0.005")
        #expect(MetricsText.format(.infinity) == "+Inf")
        #expect(MetricsText.format(.nan) == "NaN")
        #expect(MetricsText.format(1_795_933_811) == "1795933811")
    }

    @Test func aHistogramHasCumulativeBucketsSumAndCount() {
        var histogram = Histogram(bounds: [0.1, 1])
        histogram.observe(0.05)
        histogram.observe(0.5)
        histogram.observe(5)
        var text = MetricsText()
        text.histogram("x_seconds", help: "X.", histogram)
        #expect(text.text == """
            # HELP x_seconds X.
            # TYPE x_seconds histogram
            x_seconds_bucket{le="0.1"} 1
            x_seconds_bucket{le="1"} 2
            x_seconds_bucket{le="+Inf"} 3
            x_seconds_sum 5.55
            x_seconds_count 3

            """)
    }

    @Test func theReportHasEveryFamilyAndTheUpgradeOnesOnlyWithUpgrades() {
        let report = MetricsReport(servingGeneration: 3, childStartTime: 1_700_000_000, binarySHA256: "ab",
                                   releaseVersion: "1.0\n\"x\"", restarts: RestartMetrics(), upgrades: nil,
                                   process: ProcessUsage(residentBytes: 4096, openFDs: 9, cpuSeconds: 0.5))
        let text = report.text
        #expect(text.contains("overseerd_generation 3\n"))
        #expect(text.contains(#"overseerd_binary_info{sha256="ab",version="1.0\n\"x\""} 1"#))
        #expect(text.contains(#"overseerd_restarts_total{result="failed"} 0"#))
        #expect(text.contains("process_open_fds 9\n"))
        #expect(!text.contains("overseerd_upgrades_total"))
        #expect(!text.contains("process_max_fds"))  // not known: left out, not 0
        var withUpgrades = report
        withUpgrades.upgrades = UpgradeMetrics()
        #expect(withUpgrades.text.contains(#"overseerd_upgrade_polls_total{result="failed"} 0"#))
        #expect(withUpgrades.text.contains(#"overseerd_upgrades_total{result="rolled_back"} 0"#))
        // The orphans' counter only when overseerd reaps them (PID 1, --subreaper).
        #expect(!text.contains("overseerd_orphans_reaped_total"))
        var reaping = report
        reaping.orphansReaped = 0
        #expect(reaping.text.contains("# TYPE overseerd_orphans_reaped_total counter\noverseerd_orphans_reaped_total 0\n"))
    }
}

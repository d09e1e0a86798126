#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// Issue #22's nine attacks on probation and rollback, each with a real
/// overseerd, real children and the release mechanisms an operator uses.
/// Each test names its sequence and says how the overseerd of before the fix
/// failed it.
///
/// A is the test child as it is; the releases B and C are small shell scripts
/// that set a few OTC_* variables and exec the test child, so that what a
/// release does is part of the release (its own bytes, its own hash), not of
/// OTC_CONFIG, which every generation would read.
@Suite struct ProbationAttackTests {
    /// A release: `setup` (shell lines, which may look at $OVERSEER_GENERATION),
    /// then the test child. It answers the start check as the test child does.
    static func release(_ tag: String, _ setup: String) -> Data {
        Data("""
            #!/bin/sh
            # release \(tag) \(UInt64.random(in: 0 ... .max))
            \(setup)
            exec \(shellQuoted(Binaries.testChild)) "$@"

            """.utf8)
    }

    /// The generation started on `binary` after `mark`, once it serves (ready,
    /// or ready and taking over from one that served before it).
    @discardableResult
    static func servingGeneration(_ run: RunningProcess, binary: String, after mark: LogMark = .start,
                                  timeout: Double = 20) throws -> LoggedEvent {
        let started = try run.waitForEvent(.generationStarted, binary: binary, after: mark, timeout: timeout)
        try run.waitForEvent(anyOf: [.generationReady, .restartSucceeded], generation: started.generation, after: mark,
                             timeout: timeout)
        return started
    }

    /// Stops overseerd (SIGTERM) and waits for it.
    static func stop(_ run: RunningProcess) throws {
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    // MARK: - 1

    /// Sequence 1: overseerd is stopped (SIGTERM, or SIGKILL) after it installed
    /// B and before generation 2 on B was ready. Started again on the same state
    /// directory, generation 1 runs B on probation; B crashes 1.5 s after READY:
    /// probation_failed, upgrade_rolled_back, A back byte for byte, a generation
    /// on A ready, overseerd running.
    /// Before the fix (both signals): generation 1 ran B with no probation_started;
    /// B exited with status 7 and overseerd exited with it.
    @Test(arguments: [SIGTERM, SIGKILL])
    func stoppedBetweenInstallAndReadyKeepsTheProbation(signal: Int32) throws {
        let deployment = try UpgradeTests.Deployment()
        let aHash = try UpgradeTests.sha256(deployment.original)
        let options = ["--probation", "10s", "--state-directory", deployment.scratch.file("state")]
        let (first, _, firstPID) = try deployment.start(options)
        // B: ready 2.5 s after its start, exits 1.5 s later; whichever generation runs it.
        let b = Self.release("slow-then-crash", "export OTC_READY_AFTER_MS=2500 OTC_EXIT_AFTER_MS=4000 OTC_EXIT_CODE=7")
        let bHash = try UpgradeTests.sha256(b)
        try deployment.deploy(b)
        try first.waitForEvent(.upgradeInstalled, binary: bHash)
        let candidate = try first.waitForEvent(.generationStarted, generation: 2)
        #expect(candidate.binary == bHash)
        first.signal(signal)
        #expect(Processes.waitUntilGone(first.pid))
        if signal == SIGKILL {
            // Its generations outlive a SIGKILLed overseerd (and keep its stderr open): end them.
            for pid in [firstPID, candidate.pid ?? -1] where pid > 0 {
                kill(pid, SIGKILL)
                #expect(Processes.waitUntilGone(pid))
            }
        }
        _ = try first.waitForExit(timeout: 10)
        #expect(!first.hasLogged(.restartSucceeded, generation: 2), "stopped before B was ready")
        #expect(deployment.installed() == b, "B is installed, and was never ready")

        let (run, port, _) = try deployment.start(options)
        let onB = try run.waitForEvent(.generationStarted, generation: 1)
        #expect(onB.binary == bHash, "generation 1 runs B")
        try run.waitForEvent(.probationStarted, timeout: 5)
        let failed = try run.waitForEvent(.probationFailed, timeout: 8)
        #expect(failed.generation == onB.generation)
        try run.waitForEvent(.upgradeRolledBack)
        let onA = try Self.servingGeneration(run, binary: aHash, after: onB.mark)
        #expect(run.events(.generationReady, generation: onA.generation).count == 1)
        #expect(deployment.installed() == deployment.original, "A is back, byte for byte")
        #expect(try HTTPClient.get(port: port).pid == onA.pid)
        #expect(run.exit == nil, "overseerd keeps running")
        try Self.stop(run)
    }

    // MARK: - 2

    /// Sequence 2: C arrives while B is on probation (previous: A). C waits for
    /// B's trial (upgrade_held); B crashes: A back, B rejected. Then C is taken,
    /// fails readiness and is rolled back to A, never to B. overseerd never exits,
    /// A is installed at the end, and B never serves again after its crash.
    /// Before the fix: no upgrade_held; C was installed at once over B on
    /// probation (PROGRAM.previous = B), its generation 3 exited 5 before ready,
    /// and the rollback put B back ("rolled back … to B"), not A.
    @Test func releaseArrivingDuringProbationWaitsForTheTrial() throws {
        let deployment = try UpgradeTests.Deployment()
        let aHash = try UpgradeTests.sha256(deployment.original)
        let (run, port, _) = try deployment.start(["--probation", "10s"])
        let b = Self.release("b", "")
        let bHash = try UpgradeTests.sha256(b)
        // C exits 300 ms after its start without ever being ready.
        let c = Self.release("c-never-ready", "unset OTC_READY_AFTER_MS\nexport OTC_EXIT_AFTER_MS=300 OTC_EXIT_CODE=5")
        let cHash = try UpgradeTests.sha256(c)
        try deployment.deploy(b)
        let onB = try run.waitForEvent(.generationStarted, generation: 2)
        #expect(onB.binary == bHash)
        try run.waitForEvent(.probationStarted, generation: 2)

        try deployment.deploy(c)
        try run.waitForEvent(named: "upgrade_held", timeout: 8)
        #expect(!run.hasLogged(.upgradeInstalled, binary: cHash), "C waits for B's trial")
        #expect(deployment.installed() == b)
        // B crashes during its probation.
        let crash = run.logMark
        kill(try #require(onB.pid), SIGKILL)
        try run.waitForEvent(.probationFailed, generation: 2)
        try Self.servingGeneration(run, binary: aHash, after: crash)
        // Then C is taken, and is not ready: back to A.
        let installedC = try run.waitForEvent(.upgradeInstalled, binary: cHash, after: crash)
        try run.waitForEvent(.upgradeFailed, binary: cHash)
        // (B's own rollback line may come after C's install: the one looked for names A.)
        try run.waitForEvent(.upgradeRolledBack, binary: aHash, after: installedC.mark)
        #expect(run.events(.upgradeRolledBack, binary: bHash).isEmpty, "never rolled back to B")
        #expect(run.events(.generationStarted, binary: bHash, after: crash).isEmpty, "B never serves again")
        #expect(deployment.installed() == deployment.original, "A is installed at the end")
        let answer = try HTTPClient.get(port: port)
        #expect(run.events(.generationStarted, binary: aHash).contains { $0.pid == answer.pid }, "A serves")
        #expect(run.exit == nil, "overseerd keeps running")
        try Self.stop(run)
    }

    // MARK: - 3

    /// Sequence 3: B on probation; a plain restart (SIGUSR2) starts generation 3
    /// on B, slow to be ready; generation 2 crashes: rollback. Generation 3 is
    /// stopped, A is put back, a generation on A serves, overseerd runs on.
    /// Before the fix: generation 2's exit was only "generation 2 exited with
    /// signal SIGKILL while generation 3 is starting; waiting for 3" — no
    /// probation_failed, no rollback; generation 3 (B) would then serve.
    @Test func crashDuringAPlainRestartOfTheReleaseOnProbation() throws {
        let deployment = try UpgradeTests.Deployment()
        let aHash = try UpgradeTests.sha256(deployment.original)
        let (run, port, _) = try deployment.start(["--probation", "10s"])
        // B: generation 3 (the plain restart) is ready only 6 s after its start.
        let b = Self.release("b-slow-gen3", #"if [ "$OVERSEER_GENERATION" = 3 ]; then export OTC_READY_AFTER_MS=6000; fi"#)
        let bHash = try UpgradeTests.sha256(b)
        try deployment.deploy(b)
        let second = try run.waitForEvent(.generationStarted, generation: 2)
        #expect(second.binary == bHash)
        try run.waitForEvent(.probationStarted, generation: 2)
        run.signal(SIGUSR2)
        let third = try run.waitForEvent(.generationStarted, generation: 3)
        #expect(third.binary == bHash)
        // Generation 2 crashes while generation 3 is starting.
        let crash = run.logMark
        kill(try #require(second.pid), SIGKILL)
        try run.waitForEvent(.probationFailed, generation: 2, timeout: 5)
        try run.waitForEvent(.generationStopped, generation: 3)
        #expect(Processes.waitUntilGone(try #require(third.pid)), "generation 3 is stopped")
        try run.waitForEvent(.upgradeRolledBack)
        let onA = try Self.servingGeneration(run, binary: aHash, after: crash)
        #expect(deployment.installed() == deployment.original)
        #expect(try HTTPClient.get(port: port).pid == onA.pid)
        #expect(!run.hasLogged(.restartSucceeded, generation: 3) && !run.hasLogged(.generationReady, generation: 3))
        #expect(run.exit == nil, "overseerd keeps running")
        try Self.stop(run)
    }

    // MARK: - 4

    /// Sequence 4: --probation-watchdog. B pings WATCHDOG=1, then stops while a
    /// plain restart (generation 3, slow to be ready) is under way when the check
    /// comes due: still probation_failed, and A back.
    /// Before the fix: nothing was logged after generation 3 started — the missed
    /// ping was dropped because a candidate existed, and the watch was not re-armed.
    @Test func watchdogMissDuringARestartStillFailsTheProbation() throws {
        let deployment = try UpgradeTests.Deployment()
        let good = ProbationRollbackTests.pinger()
        try deployment.write(good, to: deployment.program)
        let goodHash = try UpgradeTests.sha256(good)
        let marker = deployment.scratch.file("stop-pinging")
        let (run, _, _) = try deployment.start(["--probation", "10s", "--probation-watchdog", "600ms"])
        let b = ProbationRollbackTests.pinger(stopWhen: marker, generation3Delay: 8)
        try deployment.deploy(b)
        let second = try run.waitForEvent(.generationStarted, generation: 2)
        #expect(second.binary == (try UpgradeTests.sha256(b)))
        try run.waitForEvent(.probationStarted, generation: 2)
        run.signal(SIGUSR2)
        try run.waitForEvent(.generationStarted, generation: 3)
        // Generation 2 stops pinging (it lives on, hung) with the restart under way.
        let hang = run.logMark
        #expect(FileManager.default.createFile(atPath: marker, contents: Data()))
        try run.waitForEvent(.probationFailed, generation: 2, timeout: 5)
        try run.waitForEvent(.upgradeRolledBack)
        try Self.servingGeneration(run, binary: goodHash, after: hang)
        #expect(deployment.installed() == good)
        #expect(run.exit == nil, "overseerd keeps running")
        try Self.stop(run)
    }

    // MARK: - 5

    /// The `release_version` of `overseerd status --json`, nil when it has none or status failed.
    static func releaseVersion(_ socket: String) -> String? {
        guard let answer = try? HostileInputTests.control(socket, ["status", "--json"]), answer.0 == .exited(0),
              let object = try? JSONSerialization.jsonObject(with: Data(answer.1.utf8)) as? [String: Any] else { return nil }
        return object["release_version"] as? String
    }

    /// Waits (up to `timeout`) for status to show `version`; returns what it showed last.
    static func waitForReleaseVersion(_ socket: String, _ version: String, timeout: Double = 5) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        var seen = releaseVersion(socket)
        while seen != version, Date() < deadline {
            usleep(50_000)
            seen = releaseVersion(socket)
        }
        return seen
    }

    /// Sequence 5: manifest release 2.0.0 fails readiness and is rolled back;
    /// status's release_version goes back to 1.0.0, and the 1.5.0 hotfix is then
    /// taken (not refused as older than 2.0.0).
    /// Before the fix: release_version stayed "2.0.0" after the rollback, and
    /// 1.5.0 was refused: "1.5.0 is older than the installed 2.0.0".
    @Test func releaseRolledBackForNotBeingReadyGivesBackItsVersion() throws {
        let deployment = try UpgradeTests.Deployment()
        let aHash = try UpgradeTests.sha256(deployment.original)
        let site = try ManifestRolloutTests.Site(deployment.scratch)
        let socket = deployment.scratch.file("control.sock")
        // 1.0.0 is the binary installed: only its version becomes known.
        try site.publish("1.0.0", nil, sha256: aHash)
        let run = try deployment.overseerdFetching(
            ["--manifest", site.manifestURL, "--allow-unsigned-manifest", "--state-directory", deployment.scratch.file("state"),
             "--fetch-interval", "300ms", "--host-id", "host-a", "--control-socket", socket])
        try run.waitForEvent(.generationReady, generation: 1)
        try #require(Self.waitForReleaseVersion(socket, "1.0.0") == "1.0.0")

        let bad = Self.release("2.0.0-never-ready", "unset OTC_READY_AFTER_MS\nexport OTC_EXIT_AFTER_MS=300 OTC_EXIT_CODE=5")
        let badHash = try UpgradeTests.sha256(bad)
        try site.publish("2.0.0", bad, sha256: badHash)
        try run.waitForEvent(.upgradeFailed, binary: badHash)
        try run.waitForEvent(.upgradeRolledBack, binary: aHash)
        #expect(deployment.installed() == deployment.original)
        let version = Self.waitForReleaseVersion(socket, "1.0.0")
        #expect(version == "1.0.0", "release_version after the rollback")

        let hotfix = deployment.variant("1.5.0")
        let hotfixHash = try UpgradeTests.sha256(hotfix)
        try site.publish("1.5.0", hotfix, sha256: hotfixHash)
        try run.waitForEvent(.upgradeSucceeded, binary: hotfixHash, timeout: 8)
        #expect(deployment.installed() == hotfix)
        #expect(Self.waitForReleaseVersion(socket, "1.5.0") == "1.5.0")
        #expect(run.exit == nil)
        try Self.stop(run)
    }

    // MARK: - 6

    /// Sequence 6: `overseerd reexec` while B is on probation, without
    /// --state-directory; B crashes after the re-exec, within its probation:
    /// rolled back to A, overseerd runs on.
    /// Before the fix: the new image took over without the probation; B's exit
    /// was a plain generation_exited and overseerd exited (signal SIGKILL).
    @Test func reexecDuringProbationKeepsIt() throws {
        let deployment = try UpgradeTests.Deployment()
        let aHash = try UpgradeTests.sha256(deployment.original)
        let socket = deployment.scratch.file("control.sock")
        let (run, port, _) = try deployment.start(["--probation", "10s", "--control-socket", socket])
        let b = Self.release("b", "")
        try deployment.deploy(b)
        let onB = try run.waitForEvent(.generationStarted, generation: 2)
        #expect(onB.binary == (try UpgradeTests.sha256(b)))
        try run.waitForEvent(.probationStarted, generation: 2)
        // The re-exec is refused while the upgrade poll that follows the restart is under way: asked until it is taken.
        var answer = try HostileInputTests.control(socket, ["reexec"])
        let deadline = Date().addingTimeInterval(5)
        while answer.0 != .exited(0), answer.2.contains("busy"), Date() < deadline {
            usleep(100_000)
            answer = try HostileInputTests.control(socket, ["reexec"])
        }
        #expect(answer.0 == .exited(0), "\(answer)")
        let tookOver = try run.waitForEvent(.tookOver)
        #expect(tookOver.generation == 2)
        // B crashes within its probation.
        let crash = run.logMark
        kill(try #require(onB.pid), SIGKILL)
        try run.waitForEvent(.probationFailed, generation: 2, after: crash, timeout: 5)
        try run.waitForEvent(.upgradeRolledBack)
        let onA = try Self.servingGeneration(run, binary: aHash, after: crash)
        #expect(deployment.installed() == deployment.original)
        #expect(try HTTPClient.get(port: port).pid == onA.pid)
        #expect(run.exit == nil, "overseerd keeps running")
        try Self.stop(run)
    }

    // MARK: - 7 and 8: planted state files

    /// The state file overseerd uses for `deployment` in `directory` (see
    /// `ProbationRollbackTests.stateFilePath`), and the header line it wrote.
    static func plantableStateFile(_ deployment: UpgradeTests.Deployment, directory: String,
                                   options: [String] = []) throws -> (path: String, header: String) {
        let path = try ProbationRollbackTests.stateFilePath(deployment, directory: directory, options: options)
        let written = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let header = written.split(separator: "\n").first.map(String.init).flatMap { $0.hasPrefix("overseerd-state ") ? $0 : nil }
        return (path, header ?? "overseerd-state 1")
    }

    /// Sequence 7: a state file whose probation started at -9223372036854775800
    /// (the installed binary's hash): overseerd starts normally, with one
    /// state_warning, and does not crash.
    /// Before the fix: overseerd died of SIGILL (an overflow trap) right after
    /// binding, before any generation started.
    @Test func probationTimeNearInt64MinIsAWarning() throws {
        let deployment = try UpgradeTests.Deployment()
        let aHash = try UpgradeTests.sha256(deployment.original)
        let state = deployment.scratch.file("state")
        let options = ["--probation", "10s", "--state-directory", state]
        let (file, header) = try Self.plantableStateFile(deployment, directory: state, options: ["--probation", "10s"])
        try Data("\(header)\nprobation \(aHash) -9223372036854775800\n".utf8).write(to: URL(fileURLWithPath: file))
        let run = try RunningProcess.overseerd(
            ["--ready", "notify", "--log-format", "json", "--fetch", deployment.deployPath, "-l", "127.0.0.1:0"] + options
                + ["--", deployment.program],
            environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0", "OTC_CONFIG": deployment.configPath])
        try run.waitForEvent(.generationReady, generation: 1, timeout: 10)
        try run.waitForEvent(.stateWarning)
        #expect(run.events(.stateWarning).count == 1, "\(run.events(.stateWarning))")
        #expect(!run.hasLogged(.probationStarted))
        #expect(run.exit == nil)
        run.signal(SIGTERM)
        let exit = try run.waitForExit()
        #expect(exit != .killed(signal: SIGILL) && exit != .killed(signal: SIGTRAP) && exit != .exited(132), "\(exit)")
    }

    /// Sequence 8: the state directory is world-writable and the state file
    /// belongs to another user (nobody) and says B is rejected: that line is
    /// ignored (state_warning) and B is installed. Needs root (to chown).
    /// Before the fix: the planted line was believed — B skipped as "rejected
    /// before" (upgrade_unchanged), never installed; the only state_warning was
    /// the hash cache's about the directory.
    @Test func foreignStateFileInAWorldWritableDirectoryIsIgnored() throws {
        guard getuid() == 0 else {
            try #require(ProcessInfo.processInfo.environment["CI"] != "true", "needs root (chown) and CI=true")
            print("ProbationAttackTests.foreignStateFileInAWorldWritableDirectoryIsIgnored: skipped, needs root (chown)")
            return
        }
        let deployment = try UpgradeTests.Deployment()
        let state = deployment.scratch.file("state")
        // Found while the directory is still private, so that overseerd does write its file there.
        let (file, header) = try Self.plantableStateFile(deployment, directory: state)
        let b = deployment.variant("b")
        let bHash = try UpgradeTests.sha256(b)
        try Data("\(header)\nrejected \(bHash)\n".utf8).write(to: URL(fileURLWithPath: file))
        try #require(chown(file, 65534, 65534) == 0, "chown: errno \(errno)")
        try #require(chmod(state, 0o777) == 0)
        let (run, _, _) = try deployment.start(["--state-directory", state])
        try deployment.deploy(b)
        // Either B is taken, or it is skipped as rejected (the planted line believed).
        let outcome = try run.waitForEvent(anyOf: [.upgradeSucceeded, .upgradeUnchanged], binary: bHash)
        let logged = run.events().map(\.description).joined(separator: "\n")
        #expect(outcome.event == .upgradeSucceeded, "\(outcome)\n\(logged)")
        #expect(deployment.installed() == b)
        // The program's hash cache warns about this directory too (state_warning): the
        // warning looked for is the upgrade state's own (the directory is not private, so
        // the file in it is not even opened, and nothing is written there either).
        #expect(run.events(.stateWarning).contains { $0.message.hasPrefix("upgrade state not used: \(state)") },
                "no state_warning says the upgrade state in \(state) is not used:\n\(logged)")
        #expect(run.events(.stateWarning).contains { $0.message.hasPrefix("the state directory is not used") })
        try Self.stop(run)
    }

    /// Red team: anyone who can open the program's directory can hold its install lock.
    /// A rollback waits for it a few seconds, then goes on without it (the link and the
    /// rename are atomic): a lock held for ever cannot keep the last good binary away.
    @Test func aHeldDirectoryLockDoesNotStopARollback() throws {
        let deployment = try UpgradeTests.Deployment()
        let (run, _, _) = try deployment.start(["--probation", "10s"])
        deployment.configureNextGeneration("OTC_EXIT_AFTER_MS=1500\nOTC_EXIT_CODE=4\n")
        let bad = deployment.variant("crashes, lock held")
        try deployment.deploy(bad)
        try run.waitForEvent(.probationStarted, generation: 2)
        deployment.configureNextGeneration("")
        let directory = open(deployment.scratch.path, O_RDONLY | O_DIRECTORY)
        try #require(directory >= 0 && flock(directory, LOCK_EX | LOCK_NB) == 0)
        defer { close(directory) }
        try run.waitForEvent(.probationFailed, generation: 2)
        try run.waitForEvent(.upgradeRolledBack, timeout: 30)
        try run.waitForEvent(.generationReady, generation: 3)
        #expect(deployment.installed() == deployment.original)
        #expect(run.exit == nil && !run.hasLogged(.rollbackFailed))
        try Self.stop(run)
    }

    /// Red team: two overseerd for one program and one state directory would undo each
    /// other's installs and rollbacks (both moving PROGRAM.previous): the second runs
    /// its program with upgrades off and says why.
    @Test func aSecondInstanceOfOneProgramInOneStateDirectoryTakesNoUpgrades() throws {
        let deployment = try UpgradeTests.Deployment()
        let state = deployment.scratch.file("state")
        let (first, _, _) = try deployment.start(["--state-directory", state])
        try first.waitForEvent(.upgradesConfigured)
        let second = try RunningProcess.overseerd(
            ["--ready", "notify", "--log-format", "json", "--fetch", deployment.deployPath, "-l", "127.0.0.1:0",
             "--state-directory", state, "--", deployment.program],
            environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0", "OTC_CONFIG": deployment.configPath])
        let refused = try second.waitForEvent(.configurationError)
        #expect(refused.message.contains("another overseerd keeps the upgrade state"), "\(refused)")
        try second.waitForEvent(.generationReady, generation: 1)
        #expect(!second.hasLogged(.upgradesConfigured))
        try Self.stop(second)
        try Self.stop(first)
    }

    // MARK: - 9

    /// Sequence 9: two overseerd for two programs share one --state-directory,
    /// each with its own manifest. The first takes 5.0.0; the second then takes
    /// its 1.1.0 (not refused as older than 5.0.0).
    /// Before the fix: the second refused it: "1.1.0 is older than the installed 5.0.0".
    @Test func twoProgramsShareAStateDirectory() throws {
        let one = try UpgradeTests.Deployment()
        let two = try UpgradeTests.Deployment()
        let state = one.scratch.file("state")
        let siteOne = try ManifestRolloutTests.Site(one.scratch)
        let siteTwo = try ManifestRolloutTests.Site(two.scratch)
        let v5 = one.variant("5.0.0")
        let v5Hash = try UpgradeTests.sha256(v5)
        try siteOne.publish("5.0.0", v5, sha256: v5Hash)
        let first = try one.overseerdFetching(
            ["--manifest", siteOne.manifestURL, "--allow-unsigned-manifest", "--fetch-interval", "300ms", "--host-id", "host-1", "--state-directory", state])
        try first.waitForEvent(.upgradeSucceeded, binary: v5Hash)

        let v11 = two.variant("1.1.0")
        let v11Hash = try UpgradeTests.sha256(v11)
        try siteTwo.publish("1.1.0", v11, sha256: v11Hash)
        let second = try two.overseerdFetching(
            ["--manifest", siteTwo.manifestURL, "--allow-unsigned-manifest", "--fetch-interval", "300ms", "--host-id", "host-2", "--state-directory", state])
        try second.waitForEvent(.upgradeSucceeded, binary: v11Hash, timeout: 8)
        #expect(!second.hasLogged(.upgradePollFailed), "\(second.events(.upgradePollFailed))")
        #expect(one.installed() == v5 && two.installed() == v11)
        #expect(first.exit == nil && second.exit == nil)
        try Self.stop(first)
        try Self.stop(second)
    }
}

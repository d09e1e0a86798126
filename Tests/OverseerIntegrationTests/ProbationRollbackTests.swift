import Glibc
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// An upgrade that passes every check and becomes ready, then crashes: while
/// it is on probation overseerd puts the previous binary back and serves on,
/// with no refused connection.
@Suite struct ProbationRollbackTests {
    /// The upgrade state file overseerd keeps in `directory`: today `upgrades`, one per
    /// program (`upgrades.*`) once several programs may share a directory. Nil when there is none.
    static func stateFile(in directory: String) -> String? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        // Its temporary files start with a dot; a per-program file is preferred to a legacy `upgrades`.
        // Its lock (`upgrades-….lock`) is made before the file is first written: not the state file.
        let candidates = names.filter { $0.hasPrefix("upgrades") && !$0.hasSuffix(".lock") }.sorted()
        let chosen = candidates.first { $0 != "upgrades" } ?? candidates.first
        return chosen.map { directory + "/" + $0 }
    }

    /// Where overseerd keeps its upgrade state for `deployment`'s program in
    /// `directory`: overseerd is run once there (with `options`) until it has
    /// written its file, then stopped. Falls back to `upgrades` when it wrote none.
    static func stateFilePath(_ deployment: UpgradeTests.Deployment, directory: String,
                              options: [String] = []) throws -> String {
        let (run, _, _) = try deployment.start(["--state-directory", directory] + options)
        var found = stateFile(in: directory)
        let deadline = Date().addingTimeInterval(10)
        while found == nil, Date() < deadline {
            usleep(10_000)
            found = stateFile(in: directory)
        }
        run.signal(SIGTERM)
        _ = try run.waitForExit()
        return found ?? directory + "/" + "upgrades"
    }

    @Test func crashAfterCutoverRollsBackUnderLoad() throws {
        let deployment = try UpgradeTests.Deployment()
        let (run, port, _) = try deployment.start(["--probation", "10s"])
        let load = LoadLoop(port: port)
        load.waitUntilSucceeded(20)
        // The next generation becomes ready, then exits 1.5 s later.
        deployment.configureNextGeneration("OTC_EXIT_AFTER_MS=1500\nOTC_EXIT_CODE=4\n")
        let bad = deployment.variant("crashes")
        let badHash = try UpgradeTests.sha256(bad)
        try deployment.deploy(bad)
        #expect(try run.waitForEvent(.generationStarted, generation: 2).binary == badHash)
        try run.waitForEvent(.restartSucceeded, generation: 2)
        try run.waitForEvent(.probationStarted, generation: 2)
        deployment.configureNextGeneration("")
        try run.waitForEvent(.probationFailed, generation: 2)
        // The line an operator reads: which upgrade, how it failed, what serves now.
        let rolledBack = try run.waitForEvent(.upgradeRolledBack)
        #expect(rolledBack.message.contains("upgrade to \(badHash.prefix(12)) rolled back: generation 2 exited with status 4"),
                "\(rolledBack)")
        #expect(rolledBack.message.hasSuffix("is back in place"))
        let third = try run.waitForEvent(.generationStarted, generation: 3)
        #expect(third.binary == (try UpgradeTests.sha256(deployment.original)))
        try run.waitForEvent(.generationReady, generation: 3)
        #expect(deployment.installed() == deployment.original, "the previous binary is back, byte for byte")
        load.waitUntilSucceeded(20)
        let result = load.stop()
        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        let answer = try HTTPClient.get(port: port)
        #expect(run.exit == nil, "overseerd keeps running")
        #expect(answer.pid == third.pid)
        // The same bad binary again is not taken.
        let mark = run.logMark
        try deployment.deploy(bad)
        try run.waitForEvent(.upgradeUnchanged, binary: badHash, after: mark)
        #expect(!run.hasLogged(.generationStarted, generation: 4))
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// Without probation (0), or after it passed, an exit ends overseerd as before.
    @Test func afterProbationAnExitEndsOverseerd() throws {
        let deployment = try UpgradeTests.Deployment()
        let (run, _, _) = try deployment.start(["--probation", "500ms"])
        let good = deployment.variant("good")
        try deployment.deploy(good)
        try run.waitForEvent(.restartSucceeded, generation: 2)
        try run.waitForEvent(.probationPassed, binary: try UpgradeTests.sha256(good))
        let serving = try run.waitForEvent(.generationStarted, generation: 2)
        let pid = try #require(serving.pid)
        kill(pid, SIGKILL)
        #expect(try run.waitForExit() == .killed(signal: SIGKILL))
        #expect(!run.hasLogged(.upgradeRolledBack) && !run.hasLogged(.probationFailed))
    }

    /// The rejected hash outlives overseerd: stopped and started again with the
    /// same state directory, it does not take the bad binary; `forget` clears it.
    @Test func rejectedHashIsRememberedAcrossRestartsOfOverseerd() throws {
        let deployment = try UpgradeTests.Deployment()
        let state = deployment.scratch.file("state")
        let socket = deployment.scratch.file("control.sock")
        var (run, _, _) = try deployment.start(["--probation", "10s", "--state-directory", state, "--control-socket", socket])
        deployment.configureNextGeneration("OTC_EXIT_AFTER_MS=300\n")
        let bad = deployment.variant("crashes-again")
        let badHash = try UpgradeTests.sha256(bad)
        try deployment.deploy(bad)
        try run.waitForEvent(.restartSucceeded, generation: 2)
        deployment.configureNextGeneration("")
        try run.waitForEvent(.probationFailed, generation: 2)
        try run.waitForEvent(.upgradeRolledBack)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
        let file = try #require(Self.stateFile(in: state), "no upgrade state in \(state)")
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.contains("rejected \(badHash)"), "\(text)")
        // Started again: the bad binary is still at the watched path, and is not taken.
        (run, _, _) = try deployment.start(["--probation", "10s", "--state-directory", state, "--control-socket", socket])
        try run.waitForEvent(.stateLoaded)
        try run.waitForEvent(.upgradeUnchanged, binary: badHash)
        #expect(!run.hasLogged(.upgradeFetched) && !run.hasLogged(.generationStarted, generation: 2))
        #expect(deployment.installed() == deployment.original)
        let (exit, output, _) = try HostileInputTests.control(socket, ["forget", badHash])
        #expect(exit == .exited(0), "\(output)")
        try run.waitForEvent(.binaryForgotten)
        // The state file is written on a thread of its own, right after.
        let deadline = Date().addingTimeInterval(5)
        while (try String(contentsOfFile: file, encoding: .utf8)).contains(badHash), Date() < deadline { usleep(10_000) }
        #expect(!(try String(contentsOfFile: file, encoding: .utf8)).contains(badHash))
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// overseerd restarted (by systemd, after it crashed) while the installed
    /// binary was on probation: that binary failing to start puts the previous
    /// one back instead of a crash loop.
    @Test func binaryStillOnProbationAtStartRollsBack() throws {
        let deployment = try UpgradeTests.Deployment()
        let state = deployment.scratch.file("state")
        // Where this overseerd keeps the state of this program.
        let file = try Self.stateFilePath(deployment, directory: state)
        // The bad release is installed, the good one kept as .previous, and the state says so.
        // A release that dies at once, whatever the test child's configuration says.
        let bad = Data("#!/bin/sh\nexit 3\n".utf8)
        try deployment.write(deployment.original, to: deployment.program + ".previous")
        try deployment.write(bad, to: deployment.program)
        let badHash = try UpgradeTests.sha256(bad)
        let goodHash = try UpgradeTests.sha256(deployment.original)
        let now = Int64(Date().timeIntervalSince1970)
        try Data("overseerd-state 1\nprobation \(badHash) \(now - 2)\nprevious \(goodHash)\n".utf8)
            .write(to: URL(fileURLWithPath: file))
        let run = try RunningProcess.overseerd(
            ["--ready", "notify", "--log-format", "json", "--fetch", deployment.deployPath, "--probation", "30s",
             "--state-directory", state, "-l", "127.0.0.1:0", "--", deployment.program],
            environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0", "OTC_CONFIG": deployment.configPath])
        try run.waitForEvent(.probationStarted, binary: badHash)
        let failed = try run.waitForEvent(.probationFailed, generation: 1)
        #expect(failed.message.contains("exited with status 3 before it was ready"), "\(failed)")
        try run.waitForEvent(.generationReady, generation: 2)
        #expect(deployment.installed() == deployment.original)
        let rolledBack = try run.waitForEvent(.upgradeRolledBack)
        #expect(rolledBack.message.contains("upgrade to \(badHash.prefix(12))"), "\(rolledBack)")
        #expect(try String(contentsOfFile: file, encoding: .utf8).contains("rejected \(badHash)"))
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// A python child for --probation-watchdog: it answers the start check, sends
    /// READY=1 at once (generation 3 after `generation3Delay` seconds), then
    /// WATCHDOG=1 every 100 ms until `stopAfter` seconds have passed (never when
    /// negative) or the file `stopWhen` exists, but at least once; it lives on,
    /// hung, after that.
    static func pinger(stopAfter seconds: Double = -1, stopWhen marker: String? = nil,
                       generation3Delay delay: Double = 0) -> Data {
        Data("""
            #!/usr/bin/env python3
            import os, socket, sys, time
            if "OVERSEER_CHECK_TOKEN" in os.environ:
                print(os.environ["OVERSEER_CHECK_TOKEN"])
                sys.exit(0)
            address = os.environ["NOTIFY_SOCKET"]
            address = "\\0" + address[1:] if address.startswith("@") else address
            def notify(message):
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                    s.connect(address)
                    s.send(message.encode())
            if os.environ.get("OVERSEER_GENERATION") == "3":
                time.sleep(\(delay))
            notify("READY=1")
            started = time.time()
            marker = "\(marker ?? "")"
            pinged = False
            while True:
                # At least one ping first: a generation that never pinged is not watched.
                stopped = pinged and ((\(seconds) >= 0 and time.time() - started >= \(seconds)) or (marker and os.path.exists(marker)))
                if not stopped:
                    notify("WATCHDOG=1")
                    pinged = True
                time.sleep(0.1)

            """.utf8)
    }

    /// With --probation-watchdog, a new binary that pings and then hangs (alive,
    /// no more WATCHDOG=1) fails its probation as a crash would.
    @Test func hungReleaseOnProbationIsRolledBack() throws {
        let deployment = try UpgradeTests.Deployment()
        let good = Self.pinger()
        try deployment.write(good, to: deployment.program)
        let (run, _, _) = try deployment.start(["--probation", "20s", "--probation-watchdog", "600ms"])
        try deployment.deploy(Self.pinger(stopAfter: 0.5))
        try run.waitForEvent(.probationStarted, generation: 2)
        try run.waitForEvent(.probationFailed, generation: 2)
        let rolledBack = try run.waitForEvent(.upgradeRolledBack)
        #expect(rolledBack.message.contains("generation 2 stopped sending WATCHDOG=1"), "\(rolledBack)")
        try run.waitForEvent(.generationReady, generation: 3)
        #expect(deployment.installed() == good)
        #expect(run.exit == nil)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

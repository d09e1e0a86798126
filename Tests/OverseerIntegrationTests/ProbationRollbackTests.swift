import Glibc
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// An upgrade that passes every check and becomes ready, then crashes: while
/// it is on probation overseerd puts the previous binary back and serves on,
/// with no refused connection.
@Suite struct ProbationRollbackTests {
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
        try run.waitForLine(containing: "generation 2 is ready")
        try run.waitForLine(containing: "generation 2 runs a new binary: on probation for 10s")
        deployment.configureNextGeneration("")
        let line = try run.waitForLine(containing: "rolled back:")
        #expect(line.contains("upgrade to \(badHash.prefix(12)) rolled back: generation 2 exited with status 4"), "\(line)")
        #expect(line.hasSuffix("serves again"))
        let third = try run.waitForLine(containing: "generation 3 started")
        try run.waitForLine(containing: "generation 3 is ready")
        #expect(deployment.installed() == deployment.original, "the previous binary is back, byte for byte")
        load.waitUntilSucceeded(20)
        let result = load.stop()
        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        let answer = try HTTPClient.get(port: port)
        #expect(run.exit == nil, "overseerd keeps running")
        #expect(answer.pid == GracefulRestartTests.pid(in: third, after: "pid"))
        // The same bad binary again is not taken.
        try deployment.deploy(bad)
        try run.waitForLine(containing: "was rejected before; skipped")
        #expect(run.lines(containing: "generation 4 started").isEmpty)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// Without probation (0), or after it passed, an exit ends overseerd as before.
    @Test func afterProbationAnExitEndsOverseerd() throws {
        let deployment = try UpgradeTests.Deployment()
        let (run, _, _) = try deployment.start(["--probation", "500ms"])
        try deployment.deploy(deployment.variant("good"))
        try run.waitForLine(containing: "generation 2 is ready")
        try run.waitForLine(containing: "passed its probation")
        let serving = try run.waitForLine(containing: "generation 2 started")
        let pid = try #require(GracefulRestartTests.pid(in: serving, after: "pid"))
        kill(pid, SIGKILL)
        #expect(try run.waitForExit() == .killed(signal: SIGKILL))
        #expect(run.lines(containing: "rolled back").isEmpty)
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
        try run.waitForLine(containing: "generation 2 is ready")
        deployment.configureNextGeneration("")
        try run.waitForLine(containing: "rolled back:")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
        let text = try String(contentsOfFile: state + "/upgrades", encoding: .utf8)
        #expect(text.contains("rejected \(badHash)"), "\(text)")
        // Started again: the bad binary is still at the watched path, and is not taken.
        (run, _, _) = try deployment.start(["--probation", "10s", "--state-directory", state, "--control-socket", socket])
        try run.waitForLine(containing: "remembered from")
        try run.waitForLine(containing: "was rejected before; skipped")
        #expect(run.lines(containing: "generation 2 started").isEmpty)
        #expect(deployment.installed() == deployment.original)
        let (exit, output, _) = try HostileInputTests.control(socket, ["forget", badHash])
        #expect(exit == .exited(0), "\(output)")
        #expect(!(try String(contentsOfFile: state + "/upgrades", encoding: .utf8)).contains(badHash))
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// overseerd restarted (by systemd, after it crashed) while the installed
    /// binary was on probation: that binary failing to start puts the previous
    /// one back instead of a crash loop.
    @Test func binaryStillOnProbationAtStartRollsBack() throws {
        let deployment = try UpgradeTests.Deployment()
        let state = deployment.scratch.file("state")
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        // The bad release is installed, the good one kept as .previous, and the state says so.
        // A release that dies at once, whatever the test child's configuration says.
        let bad = Data("#!/bin/sh\nexit 3\n".utf8)
        try deployment.write(deployment.original, to: deployment.program + ".previous")
        try deployment.write(bad, to: deployment.program)
        let badHash = try UpgradeTests.sha256(bad)
        let goodHash = try UpgradeTests.sha256(deployment.original)
        let now = Int64(Date().timeIntervalSince1970)
        try Data("overseerd-state 1\nprobation \(badHash) \(now - 2)\nprevious \(goodHash)\n".utf8)
            .write(to: URL(fileURLWithPath: state + "/upgrades"))
        let run = try RunningProcess.overseerd(
            ["--ready", "notify", "--fetch", deployment.deployPath, "--probation", "30s", "--state-directory", state,
             "-l", "127.0.0.1:0", "--", deployment.program],
            environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0", "OTC_CONFIG": deployment.configPath])
        try run.waitForLine(containing: "is still on probation")
        try run.waitForLine(containing: "generation 1 exited with status 3 before it was ready, and its binary is on probation")
        try run.waitForLine(containing: "generation 2 is ready")
        #expect(deployment.installed() == deployment.original)
        let line = try run.waitForLine(containing: "rolled back:")
        #expect(line.contains("upgrade to \(badHash.prefix(12))"), "\(line)")
        #expect(try String(contentsOfFile: state + "/upgrades", encoding: .utf8).contains("rejected \(badHash)"))
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// With --probation-watchdog, a new binary that pings and then hangs (alive,
    /// no more WATCHDOG=1) fails its probation as a crash would.
    @Test func hungReleaseOnProbationIsRolledBack() throws {
        let deployment = try UpgradeTests.Deployment()
        func pinger(stopAfter seconds: Double) -> Data {
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
            notify("READY=1")
            started = time.time()
            while True:
                if \(seconds) < 0 or time.time() - started < \(seconds):
                    notify("WATCHDOG=1")
                time.sleep(0.1)

            """.utf8)
        }
        let good = pinger(stopAfter: -1)
        try deployment.write(good, to: deployment.program)
        let (run, _, _) = try deployment.start(["--probation", "20s", "--probation-watchdog", "600ms"])
        try deployment.deploy(pinger(stopAfter: 0.5))
        try run.waitForLine(containing: "generation 2 runs a new binary: on probation")
        try run.waitForLine(containing: "generation 2 stopped sending WATCHDOG=1 during its probation")
        let line = try run.waitForLine(containing: "rolled back:")
        #expect(line.contains("generation 2 stopped sending WATCHDOG=1"), "\(line)")
        try run.waitForLine(containing: "generation 3 is ready")
        #expect(deployment.installed() == good)
        #expect(run.exit == nil)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

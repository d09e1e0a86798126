import Glibc
import Foundation
import OverseerCore
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
}

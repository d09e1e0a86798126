#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// Signals the kernel raises against overseerd itself are not the operator's:
/// they never reach the program.
@Suite struct SelfRaisedSignalTests {
    typealias Setup = GracefulRestartTests.Setup

    /// Under `ulimit -f 0` (LimitFSIZE=0) writing the hash cache raises SIGXFSZ in
    /// overseerd and fails with EFBIG: a warning, and generation 1 serves on.
    @Test func aWriteOverTheFileSizeLimitKillsNoGeneration() throws {
        let setup = Setup()
        let state = setup.scratch.file("state")
        #expect(mkdir(state, 0o700) == 0)
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        let run = try RunningProcess(
            ["/usr/bin/prlimit", "--fsize=0", "--", Binaries.overseerd, "--ready", "notify", "--log-format", "json",
             "--state-directory", state, "-l", "127.0.0.1:0", "--", Binaries.testChild],
            environment: ["OVERSEERD_CONTROL_SOCKET": "none", "OTC_CONFIG": setup.configPath, "OTC_SERVE": "1"])
        let started = try StructuredLogTests.waitForEvent(run, "generation_started", generation: 1)
        let pid = try #require((started["pid"] as? Int).map(Int32.init))
        let kept = try StructuredLogTests.waitForEvent(run, "signal_kept")
        #expect((kept["message"] as? String)?.contains("SIGXFSZ") == true, "\(kept)")
        #expect(kept["level"] as? String == "warning")
        let warning = try StructuredLogTests.waitForEvent(run, "state_warning")
        #expect((warning["message"] as? String)?.contains("file too large") == true, "\(warning)")
        #expect((warning["message"] as? String)?.contains("give --state-directory") == false, "\(warning)")
        _ = try StructuredLogTests.waitForEvent(run, "generation_ready", generation: 1)
        #expect(!run.stdoutText.contains("signal SIGXFSZ"))
        #expect(Processes.isAlive(pid), "generation 1 died: \(run.stderrText)")
        #expect(run.exit == nil)

        run.signal(SIGTERM)
        _ = try run.waitForExit()
        #expect(!run.stdoutText.contains("signal SIGXFSZ"))
    }
}

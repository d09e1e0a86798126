#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// overseerd shares stderr with its child. A stderr pipe nobody reads, filled by
/// the child, must cost overseerd dropped log lines, never its event loop.
@Suite struct StalledStderrTests {
    typealias Setup = GracefulRestartTests.Setup

    @Test(arguments: ["text", "json"])
    func aStderrNobodyReadsFreezesNothing(format: String) throws {
        let setup = Setup()
        let socket = setup.scratch.file("control.sock")
        // More than the pipe holds (64 KiB): the child's writer thread blocks on the rest.
        setup.configure(["OTC_READY_AFTER_MS": "0", "OTC_STDERR_BYTES": "70000"])
        let run = try RunningProcess(
            [Binaries.overseerd, "--ready", "notify", "--log-format", format, "--log-level", "debug",
             "--stop-timeout", "5s", "-l", "127.0.0.1:0", "--", Binaries.testChild],
            environment: ["OVERSEERD_CONTROL_SOCKET": socket, "OTC_CONFIG": setup.configPath, "OTC_SERVE": "1"],
            unreadStderr: true)
        let first = try #require(GracefulRestartTests.pid(in: try run.waitForLine(containing: "child ready pid", in: .stdout), after: "pid"))
        let full = Date().addingTimeInterval(10)
        while !run.unreadStderrIsFull, Date() < full { usleep(10_000) }
        try #require(run.unreadStderrIsFull, "the child did not fill the pipe")

        // USR2: overseerd logs while it restarts; the new generation comes up and the old one is stopped.
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        run.signal(SIGUSR2)
        let startedLine = try run.waitForLine(containing: "generation 2", in: .stdout, timeout: 10)
        let second = try #require(GracefulRestartTests.pid(in: startedLine, after: "pid"))
        try run.waitForLine(containing: "child ready pid \(second)", in: .stdout, timeout: 10)
        try run.waitForLine(containing: "signal SIGTERM pid \(first)", in: .stdout, timeout: 10)
        #expect(Processes.waitUntilGone(first, timeout: 10))

        // The control socket answers, and counts what was dropped.
        let status = try RunningProcess([Binaries.overseerd, "status", "--json", "--timeout=5s", "--control-socket", socket])
        let exit = try status.waitForExit(timeout: 10)
        #expect(exit == .exited(0), "status: \(status.stderrText)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(status.stdoutText.utf8)) as? [String: Any], "\(status.stdoutText)")
        #expect((object["log_lines_dropped"] as? Int ?? 0) > 0, "\(object)")
        #expect(object["serving_pid"] as? Int == Int(second))

        // SIGTERM stops it within the usual time.
        let stopped = Date()
        run.signal(SIGTERM)
        _ = try run.waitForExit(timeout: 10)
        #expect(Date().timeIntervalSince(stopped) < 6)
    }

    /// With `--child-output capture` the child's lines go through overseerd: while
    /// nobody reads overseerd's stderr, overseerd stops reading the child's pipes
    /// (the child blocks in its own write) and answers everything else.
    @Test func aStderrNobodyReadsStallsACapturedChildNotOverseerd() throws {
        let setup = Setup()
        let socket = setup.scratch.file("control.sock")
        setup.configure(["OTC_READY_AFTER_MS": "0", "OTC_STDERR_BYTES": "1000000"])
        let run = try RunningProcess(
            [Binaries.overseerd, "--ready", "notify", "--child-output", "capture", "--stop-timeout", "5s",
             "-l", "127.0.0.1:0", "--", Binaries.testChild],
            environment: ["OVERSEERD_CONTROL_SOCKET": socket, "OTC_CONFIG": setup.configPath, "OTC_SERVE": "1"],
            unreadStderr: true)
        let full = Date().addingTimeInterval(10)
        while !run.unreadStderrIsFull, Date() < full { usleep(10_000) }
        try #require(run.unreadStderrIsFull, "the child's lines did not fill overseerd's stderr")

        setup.configure(["OTC_READY_AFTER_MS": "0"])
        run.signal(SIGUSR2)
        // The child's own stdout goes through the stalled stream too: ask the control socket.
        let deadline = Date().addingTimeInterval(10)
        var serving: [String: Any] = [:]
        while Date() < deadline {
            let status = try RunningProcess([Binaries.overseerd, "status", "--json", "--timeout=2s", "--control-socket", socket])
            _ = try status.waitForExit(timeout: 5)
            serving = (try? JSONSerialization.jsonObject(with: Data(status.stdoutText.utf8)) as? [String: Any]) ?? [:]
            if serving["serving_generation"] as? Int == 2, (serving["generations"] as? [Any])?.count == 1 { break }
            usleep(50_000)
        }
        #expect(serving["serving_generation"] as? Int == 2 && (serving["generations"] as? [Any])?.count == 1, "\(serving)")
        #expect((serving["log_lines_dropped"] as? Int).map { $0 >= 0 } == true)

        let stopped = Date()
        run.signal(SIGTERM)
        _ = try run.waitForExit(timeout: 10)
        #expect(Date().timeIntervalSince(stopped) < 6)
    }
}

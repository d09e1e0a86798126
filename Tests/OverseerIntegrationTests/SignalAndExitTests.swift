#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// Signals reach the child; overseerd ends the way its child ended.
@Suite struct SignalAndExitTests {
    @Test func signalsAreForwardedToTheChild() throws {
        let run = try RunningProcess.overseerd(["-l", "127.0.0.1:0", "--", Binaries.testChild],
                                               environment: ["OTC_TERM_EXIT": "0"])
        let started = try run.waitForLine(containing: "child started pid", in: .stdout)
        let childPID = try #require(started.split(separator: " ").dropFirst(3).first.map(String.init))
        for (signal, name) in [(SIGHUP, "SIGHUP"), (SIGUSR1, "SIGUSR1"), (SIGWINCH, "SIGWINCH"), (SIGINT, "SIGINT")] {
            run.signal(signal)
            try run.waitForLine(containing: "signal \(name) pid \(childPID)", in: .stdout)
        }
        // SIGINT made the child exit 0 (OTC_TERM_EXIT), and so overseerd.
        #expect(try run.waitForExit() == .exited(0))
    }

    @Test(arguments: [Int32(0), 3, 255])
    func exitCodeIsPassedOn(code: Int32) throws {
        let run = try RunningProcess.overseerd(["-l", "127.0.0.1:0", "--", Binaries.testChild],
                                               environment: ["OTC_EXIT": String(code)])
        #expect(try run.waitForExit() == .exited(code))
    }

    @Test(arguments: [("KILL", SIGKILL), ("TERM", SIGTERM), ("SEGV", SIGSEGV)])
    func deathBySignalIsPassedOn(name: String, signal: Int32) throws {
        let run = try RunningProcess.overseerd(["-l", "127.0.0.1:0", "--", Binaries.testChild],
                                               environment: ["OTC_KILL_SELF": name])
        #expect(try run.waitForExit() == .killed(signal: signal))
        #expect(run.lines(containing: "core dumped").isEmpty)
    }

    @Test func sigtermIsForwardedAndOverseerdDiesOfItToo() throws {
        let run = try RunningProcess.overseerd(["-l", "127.0.0.1:0", "--", Binaries.testChild])
        try run.waitForLine(containing: "child started", in: .stdout)
        run.signal(SIGTERM)
        try run.waitForLine(containing: "signal SIGTERM", in: .stdout)
        #expect(try run.waitForExit() == .killed(signal: SIGTERM))
    }

    @Test func childIgnoringStopGetsKilledAfterStopTimeout() throws {
        let run = try RunningProcess.overseerd(["--stop-timeout", "300ms", "-l", "127.0.0.1:0", "--", Binaries.testChild],
                                               environment: ["OTC_IGNORE_TERM": "1"])
        try run.waitForLine(containing: "child started", in: .stdout)
        let start = Date()
        run.signal(SIGTERM)
        #expect(try run.waitForExit() == .killed(signal: SIGKILL))
        #expect(Date().timeIntervalSince(start) >= 0.3)
        #expect(!run.lines(containing: "did not stop within 300ms; sending SIGKILL").isEmpty)
    }

    @Test func overseerdDeathStopsTheChild() throws {
        let run = try RunningProcess.overseerd(["-l", "127.0.0.1:0", "--", Binaries.testChild])
        let started = try run.waitForLine(containing: "child started pid", in: .stdout)
        let childPID = try #require(started.split(separator: " ").dropFirst(3).first.flatMap { Int32($0) })
        run.signal(SIGKILL)
        #expect(try run.waitForExit() == .killed(signal: SIGKILL))
        #expect(Processes.waitUntilGone(childPID), "the child got its parent-death signal")
    }
}

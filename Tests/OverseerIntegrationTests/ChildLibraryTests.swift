#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// OverseerChild in a real child process.
@Suite struct ChildLibraryTests {
    /// A listening socket with one connection waiting in its queue.
    struct ListenerWithPendingConnection {
        let listener: Int32
        let client: Int32

        init() throws {
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(server, pointer, length) == 0 && listen(server, 16) == 0 && getsockname(server, pointer, &length) == 0
                }
            }
            guard bound else { throw HarnessError("bind/listen: errno \(errno)") }
            let connecting = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let status = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(connecting, $0, length) }
            }
            guard status == 0 else { throw HarnessError("connect: errno \(errno)") }
            listener = server
            client = connecting
        }

        /// Whether the queued connection is still there, i.e. nobody accepted it.
        func pendingConnectionIsStillQueued() -> Bool {
            _ = fcntl(listener, F_SETFL, O_NONBLOCK)
            let accepted = accept(listener, nil, nil)
            if accepted >= 0 { Glibc.close(accepted) }
            return accepted >= 0
        }

        func close() {
            Glibc.close(listener)
            Glibc.close(client)
        }
    }

    @Test func upgradeCheckIsAnsweredBeforeTheProgramTouchesItsSockets() throws {
        let scratch = ScratchDirectory()
        let shared = try ListenerWithPendingConnection()
        defer { shared.close() }
        let report = scratch.file("report")
        let run = try RunningProcess(
            [Binaries.testChild],
            environment: ["OVERSEER_CHECK_TOKEN": "token-4b1d", "OTC_SERVE": "1", "OTC_REPORT": report,
                          "LISTEN_FDS": "1", "LISTEN_FDNAMES": "http"],
            extraFDs: [shared.listener])
        #expect(try run.waitForExit() == .exited(0))
        #expect(run.stdoutText == "token-4b1d\n")
        #expect(!FileManager.default.fileExists(atPath: report), "it reported (read its environment and fds) before answering")
        #expect(shared.pendingConnectionIsStillQueued(), "it accepted on its socket before answering")
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func stopRequestGetsThroughWhileEveryOtherThreadBlocksTheSignal(signal: Int32) throws {
        let probe = try RunningProcess([Binaries.stopProbe])
        try probe.waitForLine(containing: "watching pid \(probe.pid)", in: .stdout)
        probe.signal(signal)
        #expect(try probe.waitForExit() == .exited(0))
        let name = signal == SIGTERM ? "SIGTERM" : "SIGINT"
        #expect(probe.lines(containing: "callback \(name)", in: .stdout).count == 1)
        #expect(probe.lines(containing: "stop \(name)", in: .stdout).count == 1)
    }

    @Test func underOverseerdTheOldGenerationSeesItsStopRequest() throws {
        let run = try RunningProcess.overseerd(["--ready", "notify", "-l", "127.0.0.1:0", "--", Binaries.stopProbe])
        try run.waitForLine(containing: "generation 1 is ready")
        let first = try run.waitForLine(containing: "watching pid", in: .stdout)
        run.signal(SIGUSR2)
        try run.waitForLine(containing: "generation 2 is ready; stopping generation 1")
        try run.waitForLine(containing: "generation 1 is stopping")
        try run.waitForLine(containing: "generation 1 stopped")
        let stdout = run.stdoutText
        #expect(stdout.contains("callback SIGTERM\nstop SIGTERM\n") || stdout.contains("stop SIGTERM\ncallback SIGTERM\n"),
                "generation 1 (\(first)) saw one stop request: \(stdout)")
        run.signal(SIGTERM)
        #expect(try run.waitForExit() == .exited(0), "overseerd exits with the child's status")
    }

    /// A library must not end its host program: with no fd to spare, watching
    /// for stop requests throws an error the program can act on (it used to
    /// call fatalError, and the program died of SIGILL).
    @Test func stopWatchWithAFullFdTableThrowsInsteadOfKillingTheProgram() throws {
        let probe = try RunningProcess([Binaries.stopProbe], environment: ["OSP_NO_FREE_FD": "1"])
        #expect(try probe.waitForExit() == .exited(3))
        let line = try #require(probe.lines(containing: "error:", in: .stdout).first)
        #expect(line.contains("[stopWatchFailed]"), "\(line)")
        #expect(line.contains("pipe failed"), "the message names the call that failed: \(line)")
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerTestSupport
import Testing

/// What a child finds when overseerd starts it: fds, environment, signal state.
@Suite struct ChildContractTests {
    @Test func childGetsSocketsEnvironmentAndCleanSignalState() throws {
        let scratch = ScratchDirectory()
        let report = scratch.file("report")
        let socketPath = scratch.file("admin.sock")
        // Start overseerd from a parent that ignores SIGINT and blocks SIGUSR1, and with
        // systemd variables meant for overseerd: none of that may reach the child.
        let launcher = """
            import os, signal, sys
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
            os.execv(sys.argv[1], sys.argv[1:])
            """
        let run = try RunningProcess(
            ["/usr/bin/env", "python3", "-c", launcher, Binaries.overseerd,
             "-l", "http=127.0.0.1:0", "--listen", "admin=unix:\(socketPath)", "--", Binaries.testChild],
            environment: ["OTC_REPORT": report, "OTC_MARKER": "kept", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1",
                          "LISTEN_PIDFDID": "77"])
        let port = try run.listenerPort("http")
        let values = try ChildReport.read(report)
        let pid = try #require(values["pid"])

        #expect(values["env.LISTEN_PID"] == pid)
        #expect(values["env.LISTEN_FDS"] == "2")
        #expect(values["env.LISTEN_FDNAMES"] == "http:admin")
        #expect(values["fds"] == "0,1,2,3,4")
        #expect(values["fd.3"] == "stream inet:127.0.0.1:\(port) listening=1 cloexec=0")
        #expect(values["fd.4"] == "stream unix:\(socketPath) listening=1 cloexec=0")
        #expect(values["SigBlk"] == "0000000000000000")
        #expect(values["SigIgn"] == "0000000000000000")
        #expect(values["pgid"] == pid, "the child leads its own process group")
        #expect(values["env.OTC_MARKER"] == "kept")
        #expect(values["env.WATCHDOG_USEC"] == "<unset>")
        #expect(values["env.WATCHDOG_PID"] == "<unset>")
        #expect(values["env.LISTEN_PIDFDID"] == "<unset>")
        #expect(values["env.NOTIFY_SOCKET"]?.hasPrefix("@overseerd/") == true)
        #expect(values["env.OVERSEER_GENERATION"] == "1")
        #expect(values["env.OVERSEER_BINARY_PATH"] == Binaries.testChild)
        #expect(values["env.OVERSEER_BINARY_ID"] == (try sha256sum(Binaries.testChild)))
        #expect(values["library.names"] == "http,admin")
        #expect(values["library.generation"] == "1")
        #expect(values["env-after-library.LISTEN_FDS"] == "<unset>", "the library clears LISTEN_* once read")

        run.signal(SIGTERM)
        _ = try run.waitForExit()
        #expect(!FileManager.default.fileExists(atPath: socketPath), "overseerd removes the socket file it made")
    }

    @Test func pythonChildServesOnInheritedSocket() throws {
        let server = """
            import os, socket
            s = socket.socket(fileno=3)
            while True:
                c, _ = s.accept()
                c.recv(65536)
                c.sendall(b"HTTP/1.0 200 OK\\r\\nX-Pid: %d\\r\\n\\r\\nfrom python" % os.getpid())
                c.close()
            """
        let run = try RunningProcess.overseerd(["-l", "127.0.0.1:0", "--", "python3", "-c", server])
        let port = try run.listenerPort()
        let started = try run.waitForLine(containing: "generation 1 started: pid ")
        let response = try HTTPClient.get(port: port)
        #expect(response.status == 200)
        #expect(response.body == "from python")
        #expect(started.contains("pid \(response.pid ?? -1),"))
        run.signal(SIGTERM)
        #expect(try run.waitForExit() == .killed(signal: SIGTERM))
    }

    @Test func noSocketsMeansNoListenVariables() throws {
        let scratch = ScratchDirectory()
        let report = scratch.file("report")
        let run = try RunningProcess.overseerd(["--", Binaries.testChild], environment: ["OTC_REPORT": report, "OTC_EXIT": "0"])
        #expect(try run.waitForExit() == .exited(0))
        let values = try ChildReport.read(report)
        #expect(values["env.LISTEN_FDS"] == "<unset>")
        #expect(values["env.LISTEN_PID"] == "<unset>")
        #expect(values["fds"] == "0,1,2")
    }

    @Test func programIsFoundOnPath() throws {
        let scratch = ScratchDirectory()
        let report = scratch.file("report")
        let directory = URL(fileURLWithPath: Binaries.testChild).deletingLastPathComponent().path
        let run = try RunningProcess.overseerd(["--", "OverseerTestChild"],
                                               environment: ["PATH": "/nonexistent:\(directory)", "OTC_REPORT": report, "OTC_EXIT": "0"])
        #expect(try run.waitForExit() == .exited(0))
        #expect(try ChildReport.read(report)["env.OVERSEER_BINARY_PATH"] == Binaries.testChild)
    }

    @Test func environmentVariablesSetOptions() throws {
        let run = try RunningProcess.overseerd(["--", Binaries.testChild],
                                               environment: ["OVERSEERD_LISTEN": "one=127.0.0.1:0 two=127.0.0.1:0",
                                                             "OVERSEERD_LOG_LEVEL": "debug"])
        _ = try run.listenerPort("one")
        _ = try run.listenerPort("two")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
        #expect(!run.lines(containing: "debug:").isEmpty, "OVERSEERD_LOG_LEVEL=debug took effect")
    }
}

func sha256sum(_ path: String) throws -> String {
    let run = try RunningProcess(["/usr/bin/sha256sum", path])
    _ = try run.waitForExit()
    return String(run.stdoutText.prefix(64))
}

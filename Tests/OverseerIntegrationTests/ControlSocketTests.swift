#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// `overseerd status` and `overseerd restart [--wait]` against a running daemon.
@Suite struct ControlSocketTests {
    final class Daemon {
        let scratch: ScratchDirectory
        var socket: String { scratch.file("control.sock") }
        var config: String { scratch.file("child.conf") }
        let run: RunningProcess

        init(program: String? = nil) throws {
            let scratch = ScratchDirectory()
            self.scratch = scratch
            FileManager.default.createFile(atPath: scratch.file("child.conf"), contents: Data("OTC_READY_AFTER_MS=0\n".utf8))
            var path = Binaries.testChild
            if let program {
                path = scratch.file(program)
                try FileManager.default.copyItem(atPath: Binaries.testChild, toPath: path)
            }
            run = try RunningProcess.overseerd(["--ready", "notify", "--ready-timeout", "5s", "-l", "127.0.0.1:0", "--", path],
                                               environment: ["OVERSEERD_CONTROL_SOCKET": scratch.file("control.sock"),
                                                             "OTC_SERVE": "1", "OTC_CONFIG": scratch.file("child.conf")])
            try run.waitForLine(containing: "control socket at \(scratch.file("control.sock"))")
            try run.waitForLine(containing: "generation 1 is ready")
        }

        /// Runs `overseerd ARGUMENTS --control-socket SOCKET`.
        func control(_ arguments: [String], as user: UInt32? = nil) throws -> (ProcessExit, String, String) {
            var command = [Binaries.overseerd] + arguments + ["--control-socket", socket]
            if let user {
                command = ["/usr/bin/setpriv", "--reuid=\(user)", "--regid=\(user)", "--clear-groups"] + command
            }
            let client = try RunningProcess(command)
            let exit = try client.waitForExit()
            return (exit, client.stdoutText, client.stderrText)
        }

        deinit {
            run.signal(SIGTERM)
            _ = try? run.waitForExit()
        }
    }

    @Test func statusRestartAndWait() throws {
        let daemon = try Daemon()
        let first = try GracefulRestartTests.pid(in: daemon.run.waitForLine(containing: "generation 1 started"), after: "pid")!

        let (exit, text, _) = try daemon.control(["status"])
        #expect(exit == .exited(0))
        #expect(text.contains("overseerd pid \(daemon.run.pid), up "))
        #expect(text.contains("generation 1 serving: pid \(first), binary \(try sha256sum(Binaries.testChild).prefix(12))"))
        #expect(text.contains("last restart: none"))

        let (waitExit, waitText, _) = try daemon.control(["restart", "--wait"])
        #expect(waitExit == .exited(0))
        let second = try GracefulRestartTests.pid(in: daemon.run.waitForLine(containing: "generation 2 started"), after: "pid")!
        #expect(waitText == "generation 2 is serving (pid \(second))\n")

        let (jsonExit, json, _) = try daemon.control(["status", "--json"])
        #expect(jsonExit == .exited(0))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["serving_generation"] as? Int == 2)
        #expect(object["serving_pid"] as? Int == Int(second))
        #expect((object["last_restart"] as? [String: Any])?["result"] as? String == "succeeded")
        #expect((object["generations"] as? [[String: Any]])?.first?["state"] as? String == "serving")

        // A restart that fails: --wait says so, with the reason, and exits 1.
        FileManager.default.createFile(atPath: daemon.config, contents: Data("OTC_EXIT_AFTER_MS=20\nOTC_EXIT_CODE=3\n".utf8))
        let (failedExit, _, failedError) = try daemon.control(["restart", "--wait"])
        #expect(failedExit == .exited(1))
        #expect(failedError == "overseerd: restart failed: generation 3 exited with status 3 before ready; generation 2 keeps serving\n")
        let (_, after, _) = try daemon.control(["status"])
        #expect(after.contains("generation 2 serving: pid \(second)"))
        #expect(after.contains("last restart: failed"))
    }

    @Test func restartWaitReportsAProgramThatCannotStart() throws {
        let daemon = try Daemon(program: "app")
        try FileManager.default.removeItem(atPath: daemon.scratch.file("app"))
        let (exit, _, error) = try daemon.control(["restart", "--wait", "--timeout", "20s"])
        #expect(exit == .exited(1))
        #expect(error == "overseerd: restart failed: generation 2 could not start: cannot run \(daemon.scratch.file("app")): no such file — check the path; generation 1 keeps serving\n")
    }

    @Test func otherUsersAreRefused() throws {
        try #require(getuid() == 0, "needs root to act as another user")
        let daemon = try Daemon()
        // Even with the file and its directory opened up, the daemon checks the peer's uid.
        chmod(daemon.scratch.path, 0o755)
        chmod(daemon.socket, 0o666)
        let (exit, _, error) = try daemon.control(["status"], as: 65534)
        #expect(exit == .exited(1))
        #expect(error == "overseerd: permission denied: only root and the daemon's own user may control overseerd\n")
        try daemon.run.waitForLine(containing: "control socket: refused a connection from uid 65534")
        #expect(try daemon.control(["status"]).0 == .exited(0), "the daemon is unharmed")
    }

    @Test func malformedRequestsGetAnErrorNeverACrash() throws {
        let daemon = try Daemon()
        for request in ["bogus\n", "status --yaml\n", "\n", String(repeating: "x", count: 2000), "restart --wait --now\n",
                        String(decoding: [0xff, 0xfe, 0x00, 0x0a], as: UTF8.self)] {
            let answer = try rawExchange(daemon.socket, request)
            #expect(answer.hasPrefix("error "), "\(request.prefix(20)) → \(answer)")
        }
        #expect(try daemon.control(["status"]).0 == .exited(0))
        #expect(daemon.run.exit == nil)
    }

    @Test func unreachableDaemonExits69() throws {
        let (exit, _, error) = try RunningProcess([Binaries.overseerd, "status", "--control-socket", "/nonexistent/overseerd.sock"])
            .waitForExitWithOutput()
        #expect(exit == .exited(69))
        #expect(error == "overseerd: cannot reach overseerd at /nonexistent/overseerd.sock: no such file or directory — is it running? give --control-socket PATH\n")
    }

    /// Sends `request` and reads the answer until the daemon closes.
    func rawExchange(_ path: String, _ request: String) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw HarnessError("connect: errno \(errno)") }
        var limit = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received += buffer.prefix(count)
        }
        return String(decoding: received, as: UTF8.self)
    }
}

extension RunningProcess {
    func waitForExitWithOutput() throws -> (ProcessExit, String, String) {
        let exit = try waitForExit()
        return (exit, stdoutText, stderrText)
    }
}

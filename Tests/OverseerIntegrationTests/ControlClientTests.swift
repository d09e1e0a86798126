#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// The control commands as commands: they end on a signal or at --timeout, and
/// believe no server run by another user. Against a fake server, not a daemon.
@Suite struct ControlClientTests {
    /// A unix socket that accepts and never answers.
    final class SilentServer {
        let scratch = ScratchDirectory()
        var path: String { scratch.file("control.sock") }
        let fd: Int32
        private var accepted: [Int32] = []

        init() throws {
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let path = scratch.file("control.sock")
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
            }
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard rc == 0, listen(fd, 8) == 0 else { throw HarnessError("cannot listen on \(path): errno \(errno)") }
        }

        /// Waits for a client and for its request line; returns the line.
        func acceptRequest(timeout: Double = 10) throws -> String {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, Int32(timeout * 1000)) == 1 else { throw HarnessError("no client within \(timeout)s") }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { throw HarnessError("accept: errno \(errno)") }
            accepted.append(client)
            var line: [UInt8] = []
            var byte: UInt8 = 0
            let deadline = Date().addingTimeInterval(timeout)
            while line.last != UInt8(ascii: "\n"), Date() < deadline {
                var request = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
                guard poll(&request, 1, 1000) >= 0 else { break }
                if request.revents != 0 {
                    guard read(client, &byte, 1) == 1 else { break }
                    line.append(byte)
                }
            }
            return String(decoding: line, as: UTF8.self)
        }

        deinit {
            for client in accepted { close(client) }
            close(fd)
        }
    }

    /// `overseerd ARGUMENTS --control-socket PATH`, blocked in its wait on the silent server.
    private func waitingClient(_ server: SilentServer, _ arguments: [String]) throws -> RunningProcess {
        let client = try RunningProcess([Binaries.overseerd] + arguments + ["--control-socket", server.path])
        #expect(try server.acceptRequest() == arguments.prefix { !$0.hasPrefix("--timeout") }.joined(separator: " ") + "\n")
        return client
    }

    @Test(arguments: [(SIGTERM, Int32(143)), (SIGINT, Int32(130))])
    func signalEndsAWaitingClientAtOnce(_ signal: Int32, _ shellStatus: Int32) throws {
        let server = try SilentServer()
        let client = try waitingClient(server, ["restart", "--wait"])
        let sent = Date()
        client.signal(signal)
        // It used to block every signal and sit out its 5-minute limit.
        let exit = try client.waitForExit(timeout: 5)
        #expect(exit == .killed(signal: signal), "dies of the signal, as a command should")
        #expect(exit.shellStatus == shellStatus)
        #expect(Date().timeIntervalSince(sent) < 2)
        #expect(client.stdoutText.isEmpty)
    }

    @Test func statusEndsOnSIGTERMToo() throws {
        let server = try SilentServer()
        let client = try waitingClient(server, ["status"])
        client.signal(SIGTERM)
        #expect(try client.waitForExit(timeout: 5) == .killed(signal: SIGTERM))
    }

    @Test func timeoutEndsTheWaitWithOneLine() throws {
        let server = try SilentServer()
        let started = Date()
        let client = try waitingClient(server, ["restart", "--wait", "--timeout", "1s"])
        #expect(try client.waitForExit(timeout: 10) == .exited(1))
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed >= 0.9 && elapsed < 5, "\(elapsed)s")
        #expect(client.stderrText == "overseerd: no answer from overseerd at \(server.path) within 1s (--timeout): the restart may still be under way — see overseerd status\n")
    }

    @Test func timeoutAppliesToStatusAsWell() throws {
        let server = try SilentServer()
        let client = try waitingClient(server, ["status", "--timeout=300ms"])
        #expect(try client.waitForExit(timeout: 10) == .exited(1))
        #expect(client.stderrText == "overseerd: no answer from overseerd at \(server.path) within 300ms (--timeout)\n")
    }

    @Test(arguments: [
        // Each names a socket where nothing listens: should a check be missed, no daemon of this host is asked.
        (["restart", "--wait", "--control-socket", "/nonexistent/o.sock", "--timeout", "0"], "overseerd: --timeout must be longer than 0 — see overseerd restart --help"),
        (["restart", "--wait", "--control-socket", "/nonexistent/o.sock", "--timeout", "soon"], "overseerd: bad --timeout: bad duration \"soon\": write it with a unit, e.g. 500ms, 10s, 5m or 1h30m — see overseerd restart --help"),
        (["status", "--control-socket", "/nonexistent/o.sock", "--timeout"], "overseerd: --timeout needs a value — see overseerd status --help"),
        (["status", "--control-socket", ""], "overseerd: --control-socket needs a path — see overseerd status --help"),
        (["status", "--control-socket="], "overseerd: --control-socket needs a path — see overseerd status --help"),
    ])
    func badArgumentsAreUsageErrors(_ arguments: [String], _ message: String) throws {
        let (exit, output, error) = try RunningProcess([Binaries.overseerd] + arguments).waitForExitWithOutput()
        #expect(exit == .exited(OverseerExitCode.usage))
        #expect(output.isEmpty)
        #expect(error == message + "\n")
    }

    static let python = "/usr/bin/python3"
    static let setpriv = "/usr/bin/setpriv"
    static let canRunAsNobody = geteuid() == 0 && access(python, X_OK) == 0 && access(setpriv, X_OK) == 0

    /// Another user squats the socket's path and answers every request with success.
    @Test(.enabled(if: canRunAsNobody, "needs root, \(python) and \(setpriv) to run a server as another user"))
    func serverOfAnotherUserIsNotBelieved() throws {
        let scratch = ScratchDirectory()
        chmod(scratch.path, 0o777)
        let path = scratch.file("control.sock")
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(sys.argv[1]); s.listen(8)
            print("listening", flush=True)
            while True:
                c, _ = s.accept()
                try:
                    c.recv(100); c.sendall(b"ok generation 9 is serving (pid 1)\\n"); c.close()
                except OSError:
                    pass
            """
        let squatter = try RunningProcess([Self.setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                                           Self.python, "-c", script, path])
        defer { squatter.signal(SIGKILL) }
        try squatter.waitForLine(containing: "listening", in: .stdout)

        let (exit, output, error) = try RunningProcess([Binaries.overseerd, "restart", "--wait", "--control-socket", path])
            .waitForExitWithOutput()
        #expect(output.isEmpty, "the forged answer is not printed")
        #expect(exit == .exited(69))
        #expect(error.hasPrefix("overseerd: not asking the control socket at \(path): it is served by uid 65534 (pid "))
        #expect(error.hasSuffix("), not by root, so it is not your overseerd — remove it and its directory, or give --control-socket PATH\n"))
        #expect(error.split(separator: "\n").count == 1)
    }
}

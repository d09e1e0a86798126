#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// Misuse gets one line naming the thing and what to do, a fixed exit code, and leaves nothing behind.
@Suite struct BadInputTests {
    /// The lines overseerd printed on stderr.
    private func errorLines(_ run: RunningProcess) -> [String] {
        run.stderrText.split(separator: "\n").map(String.init)
    }

    @Test(arguments: [
        (["--bogus", "--", "true"], "unknown option '--bogus'"),
        (["-l", ":99999", "--", "true"], "bad listen address \":99999\": port \"99999\" is not a number from 0 to 65535"),
        (["-l", "unix:", "--", "true"], "bad listen address \"unix:\": unix: needs a path"),
        (["-l", "host:", "--", "true"], "bad listen address \"host:\": port \"\" is not a number"),
        (["-l", "::1:80", "--", "true"], "put an IPv6 address in brackets"),
        (["--stop-timeout", "10", "--", "true"], "bad duration \"10\""),
        (["--restart-signal", "TERM", "--", "true"], "--restart-signal cannot be SIGTERM"),
        (["--ready", "sometimes", "--", "true"], "bad readiness \"sometimes\""),
        (["-l", "a=127.0.0.1:0", "-l", "a=127.0.0.1:0", "--", "true"], "listener name \"a\" is used twice"),
        ([], "no program given"),
    ])
    func usageErrorsExit64WithOneLine(arguments: [String], message: String) throws {
        let run = try RunningProcess.overseerd(arguments)
        #expect(try run.waitForExit() == .exited(OverseerExitCode.usage))
        let lines = errorLines(run)
        #expect(lines.count == 1, "one line, got: \(lines)")
        #expect(lines.first?.hasPrefix("overseerd: ") == true)
        #expect(lines.first?.contains(message) == true, "\(lines)")
    }

    @Test func badOptionFromEnvironmentIsAUsageError() throws {
        let run = try RunningProcess.overseerd(["--", "true"], environment: ["OVERSEERD_STOP_TIMEOUT": "forever"])
        #expect(try run.waitForExit() == .exited(OverseerExitCode.usage))
        #expect(errorLines(run) == ["overseerd: bad --stop-timeout: bad duration \"forever\": write it with a unit, e.g. 500ms, 10s, 5m or 1h30m — see overseerd --help"])
    }

    @Test func missingProgramExits127BeforeAnySocket() throws {
        let scratch = ScratchDirectory()
        let socket = scratch.file("app.sock")
        let run = try RunningProcess.overseerd(["-l", "unix:\(socket)", "--", "no-such-program-here"])
        #expect(try run.waitForExit() == .exited(OverseerExitCode.notFound))
        #expect(errorLines(run) == ["overseerd: cannot run no-such-program-here: not found on PATH — give its full path or fix PATH"])
        #expect(!FileManager.default.fileExists(atPath: socket))
    }

    @Test func programThatIsNotExecutableExits126() throws {
        let scratch = ScratchDirectory()
        let program = scratch.file("not-executable")
        FileManager.default.createFile(atPath: program, contents: Data("#!/bin/sh\necho hi\n".utf8),
                                       attributes: [.posixPermissions: 0o644])
        let run = try RunningProcess.overseerd(["--", program])
        #expect(try run.waitForExit() == .exited(OverseerExitCode.cannotExecute))
        #expect(errorLines(run) == ["overseerd: cannot run \(program): permission denied — make it executable (chmod +x)"])
    }

    @Test func programWithBadFormatExits126() throws {
        let scratch = ScratchDirectory()
        let program = scratch.file("garbage")
        FileManager.default.createFile(atPath: program, contents: Data([0x00, 0x01, 0x02, 0x03, 0x04]),
                                       attributes: [.posixPermissions: 0o755])
        let run = try RunningProcess.overseerd(["-l", "127.0.0.1:0", "--", program])
        #expect(try run.waitForExit() == .exited(OverseerExitCode.cannotExecute))
        #expect(run.lines(containing: "cannot run \(program): exec failed: exec format error").count == 1)
    }

    @Test func portInUseExits71AndLeavesNothingBehind() throws {
        let scratch = ScratchDirectory()
        let (busy, port) = try listenOnEphemeralPort()
        defer { close(busy) }
        let socket = scratch.file("first.sock")
        let marker = scratch.file("ran")
        let run = try RunningProcess.overseerd(["-l", "first=unix:\(socket)", "-l", "http=127.0.0.1:\(port)",
                                                "--", "/bin/sh", "-c", "touch \(marker)"])
        #expect(try run.waitForExit() == .exited(OverseerExitCode.systemFailure))
        #expect(errorLines(run) == ["overseerd: cannot listen on 127.0.0.1:\(port) (http): address already in use — another process is listening there; stop it or choose another port"])
        #expect(!FileManager.default.fileExists(atPath: socket), "the unix socket made before the failure is removed")
        #expect(!FileManager.default.fileExists(atPath: marker), "no child was started")
    }

    @Test func privilegedPortAsUnprivilegedUserIsPermissionDenied() throws {
        let start = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_unprivileged_port_start", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 1024
        try #require(getuid() == 0, "needs root to drop to nobody with setpriv")
        try #require(start > 80, "this host lets anyone bind port 80 (ip_unprivileged_port_start=\(start))")
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "setpriv (util-linux) is missing")
        let run = try RunningProcess(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                      "--inh-caps=-all", "--bounding-set=-all",
                                      Binaries.overseerd, "-l", "http=127.0.0.1:80", "--", "/bin/true"])
        #expect(try run.waitForExit() == .exited(OverseerExitCode.systemFailure))
        #expect(errorLines(run) == ["overseerd: cannot listen on 127.0.0.1:80 (http): permission denied — run as root or grant CAP_NET_BIND_SERVICE"])
    }

    @Test func liveUnixSocketIsNotStolenButStaleOneIsReplaced() throws {
        let scratch = ScratchDirectory()
        let path = scratch.file("app.sock")
        // A live listener on the path: refused.
        let live = try listenOnUnixPath(path)
        let refused = try RunningProcess.overseerd(["-l", "unix:\(path)", "--", "/bin/true"])
        #expect(try refused.waitForExit() == .exited(OverseerExitCode.systemFailure))
        #expect(errorLines(refused) == ["overseerd: cannot listen on unix:\(path) (unknown): a running process is listening on \(path) — stop it or choose another path"])
        // The same file after its process closed it: stale, replaced.
        close(live)
        let replaced = try RunningProcess.overseerd(["-l", "web=unix:\(path)", "--unix-mode", "600", "--",
                                                     Binaries.testChild], environment: ["OTC_SERVE": "1"])
        try replaced.waitForLine(containing: "as web (unix, fd 3)")
        try replaced.waitForLine(containing: "child started", in: .stdout)
        let response = try HTTPClient.get(unixPath: path)
        #expect(response.status == 200)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        replaced.signal(SIGTERM)
        _ = try replaced.waitForExit()
    }

    @Test func regularFileInTheWayIsAnError() throws {
        let scratch = ScratchDirectory()
        let path = scratch.file("not-a-socket")
        FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8))
        let run = try RunningProcess.overseerd(["-l", "unix:\(path)", "--", "/bin/true"])
        #expect(try run.waitForExit() == .exited(OverseerExitCode.systemFailure))
        #expect(errorLines(run) == ["overseerd: cannot listen on unix:\(path) (unknown): \(path) exists and is not a socket — remove it or choose another path"])
        #expect(FileManager.default.contents(atPath: path) == Data("keep me".utf8))
    }

    @Test func unresolvableHostIsAnError() throws {
        let run = try RunningProcess.overseerd(["-l", "no-such-host.invalid:80", "--", "/bin/true"])
        #expect(try run.waitForExit() == .exited(OverseerExitCode.systemFailure))
        #expect(run.lines(containing: "cannot resolve \"no-such-host.invalid\"").count == 1)
    }
}

/// A TCP listener on 127.0.0.1 with a kernel-chosen port.
func listenOnEphemeralPort() throws -> (Int32, UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let rc = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(fd, pointer, length) == 0, listen(fd, 16) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
    }
    guard rc == 0 else { throw HarnessError("cannot listen on an ephemeral port: errno \(errno)") }
    return (fd, UInt16(bigEndian: address.sin_port))
}

/// A unix stream listener at `path`.
func listenOnUnixPath(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
    }
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard rc == 0, listen(fd, 16) == 0 else { throw HarnessError("cannot listen on \(path): errno \(errno)") }
    return fd
}

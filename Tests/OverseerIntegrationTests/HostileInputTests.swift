import Glibc
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// Hostile and unlucky input, each found by attacking a release build: the
/// daemon keeps answering, installs nothing half-written and leaves nothing behind.
@Suite struct HostileInputTests {
    static func control(_ socket: String, _ arguments: [String]) throws -> (ProcessExit, String, String) {
        try RunningProcess([Binaries.overseerd] + arguments + ["--control-socket", socket]).waitForExitWithOutput()
    }

    /// A FIFO at the watched path used to freeze the daemon in a blocking open():
    /// no control answer, signals ignored. Now it is one warning and nothing else.
    @Test func fifoAtTheWatchedPathIsRefusedWithoutBlocking() throws {
        let deployment = try UpgradeTests.Deployment()
        let socket = deployment.scratch.file("control.sock")
        let (run, port, old) = try deployment.start(["--control-socket", socket], logFormat: .text)
        let fifo = deployment.scratch.file("deploy/.f")
        try #require(mkfifo(fifo, 0o600) == 0)
        try #require(rename(fifo, deployment.deployPath) == 0)
        let line = try run.waitForLine(containing: "fetch failed:")
        #expect(line.contains("is a FIFO, not a regular file"), "\(line)")
        let (exit, status, _) = try Self.control(socket, ["status"])
        #expect(exit == .exited(0) && status.contains("generation 1 serving"))
        #expect(try HTTPClient.get(port: port).pid == old)
        // A `current` symlink to a regular release, as deploy tools make, is taken.
        let release = deployment.scratch.file("release-2")
        try deployment.write(deployment.variant("v2"), to: release)
        let link = deployment.scratch.file("deploy/.link")
        try #require(symlink(release, link) == 0)
        try #require(rename(link, deployment.deployPath) == 0)
        try run.waitForLine(containing: "generation 2 is ready")
        #expect(deployment.installed() == deployment.variant("v2"))
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// A binary written in place in 16 pieces with pauses used to be taken half
    /// written (45 % and 77 % of it were installed). Now nothing is taken while
    /// the writer has it open; the whole file is, once the writer closes it.
    @Test func slowInPlaceWriteIsTakenOnlyWhenTheWriterCloses() throws {
        let deployment = try UpgradeTests.Deployment()
        let (run, _, _) = try deployment.start([], logFormat: .text)
        let new = deployment.variant("slow")
        let fd = open(deployment.deployPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        try #require(fd >= 0)
        let piece = (new.count + 15) / 16
        for index in 0 ..< 16 {
            let chunk = new.subdata(in: min(index * piece, new.count) ..< min((index + 1) * piece, new.count))
            _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            usleep(200_000)
        }
        #expect(run.lines(containing: "fetched; verifying").isEmpty, "a partial file was taken: \(run.lines(containing: "fetched"))")
        close(fd)
        try run.waitForLine(containing: "generation 2 is ready")
        #expect(deployment.installed() == new)
        #expect(run.lines(containing: "fetched; verifying").count == 1)
        #expect(run.lines(containing: "upgrade rejected").isEmpty)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// An install that failed for a local reason (a directory where
    /// PROGRAM.previous goes) is tried again from the staged file once the
    /// obstacle is gone, and `status` says it is pending. It used to be dropped.
    @Test func failedInstallIsRetriedWithoutANewFetch() throws {
        let deployment = try UpgradeTests.Deployment()
        let socket = deployment.scratch.file("control.sock")
        let obstacle = deployment.program + ".previous"
        try FileManager.default.createDirectory(atPath: obstacle + "/in-the-way", withIntermediateDirectories: true)
        let (run, _, _) = try deployment.start(["--control-socket", socket], logFormat: .text)
        try deployment.deploy(deployment.variant("v2"))
        let failed = try run.waitForLine(containing: "not installed:")
        #expect(failed.contains("trying again in"))
        let (_, status, _) = try Self.control(socket, ["status", "--json"])
        #expect(status.contains("\"pending_install\""), "\(status)")
        try FileManager.default.removeItem(atPath: obstacle)
        try run.waitForLine(containing: "generation 2 is ready", timeout: 30)
        #expect(deployment.installed() == deployment.variant("v2"))
        #expect(run.lines(containing: "fetched; verifying").count == 1, "taken once, installed from the staged file")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// A start check killed at its deadline, and a pre-upgrade command that
    /// passed, leave nothing running: their whole process group is killed.
    @Test func helpersLeaveNoProcessBehind() throws {
        let deployment = try UpgradeTests.Deployment()
        let hungPID = deployment.scratch.file("hung.pid")
        let leftPID = deployment.scratch.file("left.pid")
        let (run, _, _) = try deployment.start([
            "--check-timeout", "1s",
            "--pre-upgrade", "sh -c 'sleep 30 & echo $! > \(leftPID)'; true",
        ], logFormat: .text)
        try deployment.deploy(Data("#!/bin/sh\nsleep 3600 &\necho $! > \(hungPID)\nexec sleep 3600\n".utf8))
        try run.waitForLine(containing: "upgrade rejected")
        let hung = try #require(Int32(try String(contentsOfFile: hungPID, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(Processes.waitUntilGone(hung), "the check's background sleep (pid \(hung)) outlived it")
        try deployment.deploy(deployment.variant("v2"))
        try run.waitForLine(containing: "generation 2 is ready")
        let left = try #require(Int32(try String(contentsOfFile: leftPID, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(Processes.waitUntilGone(left), "the pre-upgrade command's background sleep (pid \(left)) outlived it")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// With the fd table full, accept() fails with EMFILE and the connection
    /// stays queued: epoll woke the daemon again at once, 100 % CPU. Now it
    /// backs off; idle control connections are capped.
    @Test func fullFdTableCostsNoCPU() throws {
        let scratch = ScratchDirectory()
        let socket = scratch.file("control.sock")
        let run = try RunningProcess([Binaries.overseerd, "--control-socket", socket, "--ready", "notify", "-l", "127.0.0.1:0",
                                      "--", Binaries.testChild], environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0"])
        try run.waitForLine(containing: "generation 1 is ready")
        let pid = run.process.pid
        let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
        #expect(try RunningProcess(["/usr/bin/prlimit", "--pid", "\(pid)", "--nofile=\(open + 4):\(open + 4)"]).waitForExit() == .exited(0))
        var clients: [Int32] = []
        defer { for fd in clients { close(fd) } }
        for _ in 0 ..< 40 {
            let fd = socket_connect(socket)
            if fd >= 0 { clients.append(fd) }
        }
        func cpuTicks() throws -> Int {
            let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
            let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
            return Int(fields[11])! + Int(fields[12])!
        }
        usleep(300_000)
        let before = try cpuTicks()
        usleep(1_000_000)
        let used = try cpuTicks() - before
        print("overseerd with a full fd table and 40 waiting control connections: \(used) ticks of CPU in 1 s (of \(sysconf(Int32(_SC_CLK_TCK))))")
        #expect(used < 10, "\(used) ticks in one second")
        for fd in clients { close(fd) }
        clients = []
        // Once the clients are gone, it answers again.
        let deadline = Date().addingTimeInterval(10)
        var answered = false
        while !answered, Date() < deadline {
            answered = (try? Self.control(socket, ["status"]).0) == .exited(0)
        }
        #expect(answered)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// Any local user can send to a child's notify socket; every rejected
    /// datagram used to be a log line (85,061 lines in 30 s). Now a line a
    /// second per generation and kind, with a count of what was dropped.
    @Test func strangersFloodingANotifySocketCostALineASecond() throws {
        let setup = GracefulRestartTests.Setup()
        let report = setup.scratch.file("report")
        let run = try setup.start(["--ready", "notify"], environment: ["OTC_REPORT": report, "OTC_READY_AFTER_MS": "0"])
        try run.waitForLine(containing: "generation 1 is ready")
        let values = try ChildReport.read(report)
        let notifySocket = try #require(values["env.NOTIFY_SOCKET"])
        // Never blocked: a daemon that logs every datagram stops reading while nobody reads its stderr.
        var sent = 0
        let started = Date()
        let deadline = started.addingTimeInterval(3)
        while sent < 2000, Date() < deadline {
            if try FaultTests().sendDatagram("STATUS=flood", to: notifySocket, waiting: false) { sent += 1 } else { usleep(1000) }
        }
        try #require(sent >= 20, "only \(sent) datagrams could be sent")
        try run.waitForLine(containing: "ignored a notify message for generation 1")
        usleep(1_100_000)
        try FaultTests().sendDatagram("STATUS=flood", to: notifySocket)
        let summary = try run.waitForLine(containing: "more like it dropped")
        let lines = run.lines(containing: "ignored a notify message for generation 1")
        // One line a second: over the whole flood, at most one more line than whole seconds it took.
        let seconds = Int(Date().timeIntervalSince(started).rounded(.up))
        #expect(lines.count >= 2 && lines.count <= seconds + 1, "\(lines.count) lines for \(sent + 1) datagrams in \(seconds) s")
        #expect(summary.contains("("), "\(summary)")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// A child's own STATUS= changes used to be a line each (and a datagram to
    /// systemd each), however fast they came; STOPPING=1 too. Now a change a
    /// second per generation, the last one always said with the count of those
    /// left out, and STOPPING=1 once.
    @Test func childChangingItsStatusInALoopCostsALineASecond() throws {
        let scratch = ScratchDirectory()
        let script = scratch.file("chatty.py")
        try Data("""
            import os, socket, time
            address = os.environ["NOTIFY_SOCKET"]
            if address.startswith("@"):
                address = "\\0" + address[1:]
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.connect(address)
            s.send(b"READY=1")
            for n in range(3000):
                s.send(b"STATUS=step %d" % n)
            for n in range(50):
                s.send(b"STOPPING=1")
            s.send(b"STATUS=final")
            time.sleep(60)

            """.utf8).write(to: URL(fileURLWithPath: script))
        let started = Date()
        let run = try RunningProcess.overseerd(["--ready", "notify", "-l", "127.0.0.1:0", "--", "/usr/bin/python3", script])
        let last = try run.waitForLine(containing: "generation 1 status: final")
        let seconds = Int(Date().timeIntervalSince(started).rounded(.up))
        let lines = run.lines(containing: "generation 1 status:")
        #expect(lines.count >= 2 && lines.count <= seconds + 1, "\(lines.count) lines in \(seconds) s:\n\(lines.joined(separator: "\n"))")
        let skipped = last.split(separator: "(after ").last.flatMap { Int($0.prefix { $0.isNumber }) } ?? 0
        #expect(skipped + lines.count >= 3000, "\(last)")
        #expect(run.lines(containing: "generation 1 is stopping").count == 1)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// A child's STATUS= with ESC, BEL or NUL used to reach the log and
    /// `overseerd status` raw; now control characters are escaped everywhere.
    @Test func statusTextIsEscaped() throws {
        let setup = GracefulRestartTests.Setup()
        let socket = setup.scratch.file("control.sock")
        setup.configure(["OTC_READY_AFTER_MS": "0", "OTC_STATUS": "red \u{1b}[31mALERT\u{07} done"])
        let run = try setup.start(["--ready", "notify", "--control-socket", socket])
        let line = try run.waitForLine(containing: "generation 1 status:")
        #expect(line.hasSuffix("red \\x1b[31mALERT\\x07 done"), "\(line)")
        #expect(!run.stderrText.contains("\u{1b}") && !run.stderrText.contains("\u{07}"))
        let (_, status, _) = try Self.control(socket, ["status"])
        #expect(status.contains("\\x1b[31mALERT\\x07") && !status.contains("\u{1b}"), "\(status)")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// The control socket's own directory (the default path) is refused when
    /// others could write it: another user could have put a socket of their own
    /// there. One line, no control socket, the service runs on.
    @Test func controlDirectoryOthersCanWriteIsRefused() throws {
        let scratch = ScratchDirectory()
        let runtime = scratch.file("runtime")
        try FileManager.default.createDirectory(atPath: runtime, withIntermediateDirectories: true)
        chmod(runtime, 0o777)
        // RUNTIME_DIRECTORY, as systemd sets it, makes the default path $RUNTIME_DIRECTORY/overseerd.sock.
        let run = try RunningProcess([Binaries.overseerd, "--ready", "notify", "-l", "127.0.0.1:0", "--", Binaries.testChild],
                                     environment: ["RUNTIME_DIRECTORY": runtime, "OTC_READY_AFTER_MS": "0"],
                                     removing: ["OVERSEERD_CONTROL_SOCKET"])
        let line = try run.waitForLine(containing: "no control socket:")
        #expect(line.contains(runtime), "\(line)")
        try run.waitForLine(containing: "generation 1 is ready")
        #expect(!FileManager.default.fileExists(atPath: runtime + "/overseerd.sock"))
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// A stopped (SIGSTOP) old generation gets SIGCONT after its stop signal,
    /// as systemd sends it, so it can drain and exit instead of waiting for SIGKILL.
    @Test func stoppedOldGenerationIsWokenToStop() throws {
        let setup = GracefulRestartTests.Setup()
        let run = try setup.start(["--ready", "notify", "--stop-timeout", "20s"], environment: ["OTC_READY_AFTER_MS": "0"])
        let started = try run.waitForLine(containing: "generation 1 started")
        try run.waitForLine(containing: "generation 1 is ready")
        let old = try #require(GracefulRestartTests.pid(in: started, after: "pid"))
        kill(old, SIGSTOP)
        run.signal(SIGUSR2)
        try run.waitForLine(containing: "generation 2 is ready")
        try run.waitForLine(containing: "generation 1 stopped", timeout: 10)
        #expect(run.lines(containing: "SIGKILL").isEmpty)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// Staging files a killed overseerd left (up to --max-binary-size each) are removed at start.
    @Test func staleStagingFilesAreRemovedAtStart() throws {
        let deployment = try UpgradeTests.Deployment()
        let stale = deployment.scratch.file(".app.overseerd-staging-dead1")
        try Data(count: 4096).write(to: URL(fileURLWithPath: stale))
        let other = deployment.scratch.file(".other.overseerd-staging-dead2")
        try Data(count: 16).write(to: URL(fileURLWithPath: other))
        let (run, _, _) = try deployment.start([], logFormat: .text)
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(FileManager.default.fileExists(atPath: other), "another program's staging file is not ours")
        #expect(run.lines(containing: "removed 1 staging file(s)").count == 1)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

/// A connected unix stream socket to `path`, or -1 (also when its backlog is full: never waits).
func socket_connect(_ path: String) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
    }
    let status = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if status != 0 {
        close(fd)
        return -1
    }
    return fd
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// Faults in the middle of things: kills, storms, odd children, exhausted resources.
/// Quick versions; `bench/soak-long` runs the long ones.
@Suite struct FaultTests {
    typealias Setup = GracefulRestartTests.Setup

    func startedPID(_ run: RunningProcess, _ generation: Int) throws -> Int32 {
        try #require(GracefulRestartTests.pid(in: try run.waitForLine(containing: "generation \(generation) started"), after: "pid"))
    }

    @Test func killingTheNewChildMidRestartLosesNothing() throws {
        let setup = Setup()
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        let run = try setup.start(["--ready", "notify"])
        let port = try run.listenerPort()
        let old = try startedPID(run, 1)
        try run.waitForLine(containing: "generation 1 is ready")
        let load = LoadLoop(port: port)
        // Not accepting yet, as a server still starting: what it had accepted, a kill -9 would lose
        // (the kernel cannot give accepted connections back), and that is no supervisor's doing.
        setup.configure(["OTC_READY_AFTER_MS": "60000", "OTC_SERVE": ""])
        run.signal(SIGUSR2)
        let new = try startedPID(run, 2)
        try run.waitForLine(containing: "child started pid \(new)", in: .stdout)
        kill(new, SIGKILL)
        try run.waitForLine(containing: "restart failed: generation 2 exited with signal SIGKILL before ready; generation 1 keeps serving")
        load.waitUntilSucceeded(load.succeeded + 20)
        let result = load.stop()
        #expect(result.failures.isEmpty, "\(result.failures.prefix(3))")
        #expect(Processes.isAlive(old) && run.exit == nil)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func killingTheOldChildDuringDrainLosesNothing() throws {
        let setup = Setup()
        // The old child stops accepting on SIGTERM, then hangs in its drain.
        setup.configure(["OTC_READY_AFTER_MS": "0", "OTC_TERM_HANG": "1"])
        let run = try setup.start(["--ready", "notify", "--stop-timeout", "60s"])
        let port = try run.listenerPort()
        let old = try startedPID(run, 1)
        try run.waitForLine(containing: "generation 1 is ready")
        let load = LoadLoop(port: port)
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        run.signal(SIGUSR2)
        try run.waitForLine(containing: "generation 2 is ready; stopping generation 1")
        try run.waitForLine(containing: "signal SIGTERM pid \(old)", in: .stdout)
        kill(old, SIGKILL)
        try run.waitForLine(containing: "generation 1 stopped (signal SIGKILL)")
        load.waitUntilSucceeded(load.succeeded + 20)
        let result = load.stop()
        #expect(result.failures.isEmpty, "\(result.failures.prefix(3))")
        #expect(run.exit == nil)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func restartSignalStormLeavesExactlyOneChild() throws {
        let setup = Setup()
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        let run = try setup.start(["--ready", "notify"])
        let port = try run.listenerPort()
        try run.waitForLine(containing: "generation 1 is ready")
        let load = LoadLoop(port: port)
        let start = Date()
        var sent = 0
        while Date().timeIntervalSince(start) < 1, sent < 1000 {
            run.signal(SIGUSR2)
            sent += 1
            if sent % 10 == 0 { usleep(5000) }
            // Bounded: never more than the serving, one starting and the stopping ones.
            #expect(Processes.children(of: run.pid).count <= 6)
        }
        // Mixed signals for the serving child, then let things settle.
        for index in 0 ..< 300 { run.signal(index % 2 == 0 ? SIGHUP : SIGUSR1) }
        let settled = Date().addingTimeInterval(15)
        var children = Processes.children(of: run.pid)
        while Date() < settled {
            children = Processes.children(of: run.pid)
            if children.count == 1, run.lines(containing: " started: pid ").count == run.lines(containing: " stopped (").count + 1 { break }
            usleep(20_000)
        }
        let result = load.stop()
        #expect(result.failures.isEmpty, "\(result.failures.prefix(3))")
        #expect(children.count == 1, "exactly one child after the storm: \(children)")
        #expect(zombies(of: run.pid).isEmpty)
        #expect(run.exit == nil, "overseerd survived")
        let generations = run.lines(containing: " started: pid ").count
        #expect(generations >= 2 && generations <= sent + 1)
        // A storm of stop signals: everything ends, once.
        for _ in 0 ..< 50 { run.signal(SIGTERM) }
        _ = try run.waitForExit()
        #expect(children.allSatisfy { Processes.waitUntilGone($0) })
    }

    @Test func childWithGrandchildrenClosedStdoutAndIgnoredTermIsHandled() throws {
        let scratch = ScratchDirectory()
        let marker = scratch.file("grandchild")
        // The child closes its stdout, starts a grandchild, and ignores SIGTERM.
        let script = "exec >&-; sleep 300 & echo $! > \(marker); trap '' TERM; exec \(Binaries.testChild)"
        let run = try RunningProcess.overseerd(["--stop-timeout", "500ms", "-l", "127.0.0.1:0", "--", "/bin/sh", "-c", script],
                                               environment: ["OTC_IGNORE_TERM": "1", "OTC_SERVE": "1"])
        let port = try run.listenerPort()
        try run.waitForLine(containing: "generation 1 is ready")
        #expect(try HTTPClient.get(port: port).status == 200, "serves with stdout closed")
        run.signal(SIGTERM)
        // The child ignores TERM: SIGKILL after the stop timeout, and overseerd dies of the same.
        #expect(try run.waitForExit() == .killed(signal: SIGKILL))
        #expect(!run.lines(containing: "did not stop within 500ms; sending SIGKILL").isEmpty)
        // A generation is killed whole: the grandchild in its process group too.
        let grandchild = try #require(Int32((try String(contentsOfFile: marker, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(Processes.waitUntilGone(grandchild))
    }

    @Test func processesAGenerationLeavesBehindGetTheStopTimeoutThenSIGKILL() throws {
        let scratch = ScratchDirectory()
        let marker = scratch.file("grandchildren")
        // Generation 1 starts two grandchildren that would hold the listening socket, then exits
        // on SIGTERM as asked; one grandchild left the process group (setsid) and is not ours.
        let script = """
            if [ -e \(marker) ]; then exec \(Binaries.testChild); fi
            sleep 300 & echo $! >> \(marker)
            setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! >> \(marker)
            exec \(Binaries.testChild)
            """
        let run = try RunningProcess.overseerd(["-l", "127.0.0.1:0", "--ready", "notify", "--stop-timeout", "1s",
                                                "--", "/bin/sh", "-c", script],
                                               environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0"])
        try run.waitForLine(containing: "generation 1 is ready")
        let pids = try String(contentsOfFile: marker, encoding: .utf8).split(separator: "\n").compactMap { Int32($0) }
        try #require(pids.count == 2)
        let (inGroup, leftGroup) = (pids[0], pids[1])
        defer { kill(leftGroup, SIGKILL) }
        run.signal(SIGUSR2)
        let left = try run.waitForLine(containing: "generation 1 (pid")
        #expect(left.contains("exited and left 1 process(es) in its process group (\(inGroup)); SIGKILL in 1s unless they end"),
                "\(left)")
        #expect(Processes.isAlive(inGroup), "it may still be finishing something")
        try run.waitForLine(containing: "killed 1 process(es) left by generation 1 (\(inGroup))")
        #expect(Processes.waitUntilGone(inGroup))
        #expect(Processes.isAlive(leftGroup), "a process that left the group is not the generation's")
        run.signal(SIGTERM)
        #expect(try run.waitForExit() == .killed(signal: SIGTERM))
    }

    @Test func spawnFailingForLackOfFdsKeepsTheOldGenerationServing() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit"), "prlimit (util-linux) is missing")
        let setup = Setup()
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        let run = try setup.start(["--ready", "notify", "--ready-timeout", "2s"])
        let port = try run.listenerPort()
        let old = try startedPID(run, 1)
        try run.waitForLine(containing: "generation 1 is ready")
        // No fd to spare: the next spawn cannot make its pipe or notify socket.
        let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(run.pid)/fd").count
        #expect(try RunningProcess(["/usr/bin/prlimit", "--pid", "\(run.pid)", "--nofile=\(open):\(open)"]).waitForExit() == .exited(0))
        run.signal(SIGUSR2)
        let line = try run.waitForLine(containing: "restart failed: generation 2")
        #expect(line.hasSuffix("generation 1 keeps serving"))
        #expect(!run.lines(containing: "too many open files").isEmpty, "the error names the cause")
        #expect(try HTTPClient.get(port: port).pid == old)
        #expect(run.exit == nil)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func diskFullDuringStagingLeavesEverythingAsItWas() throws {
        try #require(getuid() == 0, "needs root to mount a small tmpfs")
        let deployment = try UpgradeTests.Deployment()
        let small = deployment.scratch.file("small")
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        let size = deployment.original.count + 64 * 1024
        let mounted = try RunningProcess(["/bin/mount", "-t", "tmpfs", "-o", "size=\(size)", "tmpfs", small]).waitForExit()
        try #require(mounted == .exited(0), "cannot mount a tmpfs here")
        defer { _ = try? RunningProcess(["/bin/umount", "-l", small]).waitForExit() }
        let program = small + "/app"
        try deployment.write(deployment.original, to: program)
        let (run, port, old) = try deployment.start([], program: program, logFormat: .text)
        // Twice the space left: the staging copy runs out of room.
        try deployment.deploy(deployment.original + Data(count: 256 * 1024))
        let line = try run.waitForLine(containing: "fetch failed:")
        #expect(line.contains("no space left on device"), "\(line)")
        #expect(deployment.installed(program) == deployment.original)
        #expect(try HTTPClient.get(port: port).pid == old)
        #expect(try FileManager.default.contentsOfDirectory(atPath: small) == ["app"], "the partial staging file is gone")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func notifyMessagesFromStrangersAndOversizedOnesAreIgnored() throws {
        let setup = Setup()
        let report = setup.scratch.file("report")
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        let run = try setup.start(["--ready", "notify", "--ready-timeout", "2s"], environment: ["OTC_REPORT": report])
        try run.waitForLine(containing: "generation 1 is ready")
        // Generation 2 never says READY itself; a stranger (this test) says it for it.
        try? FileManager.default.removeItem(atPath: report)
        setup.configure(["OTC_STATUS": String(repeating: "x", count: 5000)])
        run.signal(SIGUSR2)
        let values = try ChildReport.read(report)
        let notifySocket = try #require(values["env.NOTIFY_SOCKET"])
        try sendDatagram("READY=1", to: notifySocket)
        try sendDatagram(String(decoding: (0 ..< 300).map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self), to: notifySocket)
        try run.waitForLine(containing: "ignored a notify message for generation 2 from pid \(getpid())")
        try run.waitForLine(containing: "generation 2 sent a notify message over 4096 bytes; ignored")
        try run.waitForLine(containing: "restart failed: generation 2 was not ready after 2s; generation 1 keeps serving")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    func zombies(of pid: Int32) -> [Int32] {
        Processes.children(of: pid).filter { child in
            let stat = (try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8)) ?? ""
            guard let close = stat.lastIndex(of: ")") else { return false }
            return stat[stat.index(close, offsetBy: 2)] == "Z"
        }
    }

    /// Sends one datagram; with `waiting: false` a full queue drops it and the
    /// result is false (a flood must not block the test while the daemon waits for it to read stderr).
    @discardableResult
    func sendDatagram(_ text: String, to address: String, waiting: Bool = true) throws -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var storage = sockaddr_un()
        storage.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(address.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let payload = Array(text.utf8)
        let sent = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, payload, payload.count, waiting ? 0 : Int32(MSG_DONTWAIT), $0, length)
            }
        }
        if !waiting, sent < 0, errno == EAGAIN { return false }
        guard sent == payload.count else { throw HarnessError("sendto \(address): errno \(errno)") }
        return true
    }
}

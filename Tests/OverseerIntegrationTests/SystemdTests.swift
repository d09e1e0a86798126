#if canImport(Glibc)
import Glibc
#endif
import COverseerShims
import Foundation
import OverseerTestSupport
import Testing

/// overseerd under a service manager: socket activation pass-through and sd_notify.
@Suite struct SystemdTests {
    @Test func passesThroughSocketsFromSystemdSocketActivate() throws {
        let activator = "/usr/bin/systemd-socket-activate"
        try #require(FileManager.default.isExecutableFile(atPath: activator), "install the Debian package systemd")
        let scratch = ScratchDirectory()
        let report = scratch.file("report")
        // A port that was free a moment ago.
        let (probe, port) = try listenOnEphemeralPort()
        close(probe)
        let run = try RunningProcess([activator, "-l", "127.0.0.1:\(port)", "--fdname=web",
                                      "-E", "OTC_REPORT=\(report)", "-E", "OTC_SERVE=1",
                                      Binaries.overseerd, "-l", "extra=127.0.0.1:0", "--", Binaries.testChild])
        try run.waitForLine(containing: "Listening on 127.0.0.1:\(port)")
        // systemd-socket-activate starts the program at the first connection.
        let response = try HTTPClient.get(port: port)
        #expect(response.status == 200)
        try run.waitForLine(containing: "listening on 127.0.0.1:\(port) as web (tcp, fd 3, inherited)")
        let extraPort = try run.listenerPort("extra")
        let values = try ChildReport.read(report)
        #expect(values["env.LISTEN_FDS"] == "2")
        #expect(values["env.LISTEN_FDNAMES"] == "web:extra")
        #expect(values["env.LISTEN_PID"] == values["pid"])
        #expect(values["fd.3"] == "stream inet:127.0.0.1:\(port) listening=1 cloexec=0")
        #expect(values["fd.4"] == "stream inet:127.0.0.1:\(extraPort) listening=1 cloexec=0")
        #expect(response.pid.map(String.init) == values["pid"])
        run.signal(SIGTERM)
        #expect(try run.waitForExit() == .killed(signal: SIGTERM))
    }

    @Test(arguments: [false, true])
    func tellsTheServiceManagerReadyAndStopping(abstract: Bool) throws {
        let scratch = ScratchDirectory()
        let address = abstract ? "@overseerd-test-\(UInt64.random(in: 0 ... .max))" : scratch.file("notify")
        let receiver = try DatagramReceiver(address)
        let run = try RunningProcess.overseerd(["--ready", "notify", "-l", "127.0.0.1:0", "--", Binaries.testChild],
                                               environment: ["NOTIFY_SOCKET": address, "OTC_READY_AFTER_MS": "50"])
        let started = try run.waitForLine(containing: "generation 1 started: pid ")
        let childPID = try #require(started.split(separator: " ").dropFirst(5).first.map { $0.dropLast() })
        let ready = try receiver.next()
        let binary = try sha256sum(Binaries.testChild).prefix(12)
        #expect(ready == "READY=1\nSTATUS=serving generation 1 (pid \(childPID), binary \(binary))\nMAINPID=\(run.pid)")
        run.signal(SIGTERM)
        #expect(try receiver.next() == "STOPPING=1\nSTATUS=stopping")
        _ = try run.waitForExit()
        // The child never saw overseerd's NOTIFY_SOCKET; its own is overseerd's.
        #expect(run.lines(containing: "ignored a notify message").isEmpty)
    }
}

extension SystemdTests {
    /// start → restart → failed restart → stop, as systemd (Type=notify or notify-reload) sees it.
    @Test func notifyMessagesOverARestartSequence() throws {
        let scratch = ScratchDirectory()
        let address = scratch.file("notify")
        let receiver = try DatagramReceiver(address)
        let config = scratch.file("child.conf")
        FileManager.default.createFile(atPath: config, contents: Data("OTC_READY_AFTER_MS=0\n".utf8))
        let run = try RunningProcess.overseerd(["--ready", "notify", "--ready-timeout", "5s", "-l", "127.0.0.1:0", "--", Binaries.testChild],
                                               environment: ["NOTIFY_SOCKET": address, "OTC_CONFIG": config])
        let binary = try sha256sum(Binaries.testChild).prefix(12)
        func pid(_ generation: Int) throws -> String {
            let line = try run.waitForLine(containing: "generation \(generation) started: pid ")
            return String(GracefulRestartTests.pid(in: line, after: "pid") ?? -1)
        }
        #expect(try receiver.next() == "READY=1\nSTATUS=serving generation 1 (pid \(try pid(1)), binary \(binary))\nMAINPID=\(run.pid)")

        let before = MonotonicClock.microseconds()
        run.signal(SIGUSR2)
        let reloading = try receiver.next()
        let after = MonotonicClock.microseconds()
        let lines = reloading.split(separator: "\n")
        #expect(lines.count == 3 && lines[0] == "RELOADING=1" && lines[2] == "STATUS=restarting", "\(reloading)")
        let stamp = lines.count > 1 ? UInt64(lines[1].dropFirst("MONOTONIC_USEC=".count)) ?? 0 : 0
        #expect(lines.count > 1 && lines[1].hasPrefix("MONOTONIC_USEC=") && stamp >= before && stamp <= after,
                "MONOTONIC_USEC is CLOCK_MONOTONIC in µs: \(before) ≤ \(stamp) ≤ \(after)")
        #expect(try receiver.next() == "READY=1\nSTATUS=serving generation 2 (pid \(try pid(2)), binary \(binary)); last restart succeeded\nMAINPID=\(run.pid)")

        FileManager.default.createFile(atPath: config, contents: Data("OTC_EXIT_AFTER_MS=10\n".utf8))
        run.signal(SIGUSR2)
        #expect(try receiver.next().hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        #expect(try receiver.next() == "READY=1\nSTATUS=serving generation 2 (pid \(try pid(2)), binary \(binary)); last restart failed\nMAINPID=\(run.pid)",
                "a failed restart still ends the reload")

        run.signal(SIGTERM)
        #expect(try receiver.next() == "STOPPING=1\nSTATUS=stopping")
        _ = try run.waitForExit()
    }

    @Test(arguments: [false, true])
    func watchdogPingsOnlyWhileHealthy(relay: Bool) throws {
        let scratch = ScratchDirectory()
        let address = scratch.file("notify")
        let receiver = try DatagramReceiver(address)
        // The child does not ping: with relay, systemd must hear nothing.
        let run = try RunningProcess.overseerd(["--watchdog", relay ? "relay" : "auto", "--ready", "notify", "--", Binaries.testChild],
                                               environment: ["NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000", "OTC_READY_AFTER_MS": "0"])
        let messages = try receiver.collect(until: { $0.hasPrefix("READY=1") })
        #expect(messages.count == 1 || relay == false)
        var pings = 0
        let deadline = Date().addingTimeInterval(0.7)
        while Date() < deadline {
            if let message = try? receiver.next(timeout: max(0.01, deadline.timeIntervalSinceNow)), message == "WATCHDOG=1" { pings += 1 }
        }
        if relay {
            #expect(pings == 0, "a child that does not ping is not vouched for")
        } else {
            #expect(pings >= 3, "pings at half of 200ms while the child lives, got \(pings)")
        }
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// systemd's notify socket holds 10 datagrams (from every service on the
    /// host) and PID 1 reads none during a daemon-reload; sd_notify then blocks.
    /// Before, so did overseerd's whole event loop: with a receiver that stopped
    /// reading and the watchdog pinging, a restart never happened. Now the
    /// sending waits on a thread of its own, and restarts go on meanwhile.
    @Test func aNotifySocketNobodyReadsDoesNotStopTheLoop() throws {
        let scratch = ScratchDirectory()
        let address = scratch.file("notify")
        let receiver = try DatagramReceiver(address)
        let run = try RunningProcess.overseerd(["--ready", "notify", "--", Binaries.testChild],
                                               environment: ["NOTIFY_SOCKET": address, "WATCHDOG_USEC": "20000", "OTC_READY_AFTER_MS": "0"])
        _ = try receiver.collect(until: { $0.hasPrefix("READY=1") })
        // From here nobody reads: pings every 10 ms fill the queue within a tenth of a second.
        usleep(300_000)
        for generation in 2 ... 4 {
            run.signal(SIGUSR2)
            try run.waitForLine(containing: "generation \(generation) is ready; stopping generation \(generation - 1)", timeout: 10)
        }
        // Reading again: what waited arrives, in order, the superseded pings and STATUS= merged.
        var messages: [String] = []
        while let message = try? receiver.next(timeout: 1) {
            messages.append(message)
            if message.hasPrefix("READY=1") && message.contains("serving generation 4") { break }
        }
        #expect(messages.contains { $0.hasPrefix("READY=1") && $0.contains("serving generation 4") }, "\(messages)")
        run.signal(SIGTERM)
        let stopping = try receiver.collect(until: { $0.hasPrefix("STOPPING=1") }, timeout: 10)
        #expect(stopping.last?.hasPrefix("STOPPING=1") == true)
        #expect(try run.waitForExit() == .killed(signal: SIGTERM))
    }

    @Test func shippedUnitsVerify() throws {
        let analyze = "/usr/bin/systemd-analyze"
        try #require(FileManager.default.isExecutableFile(atPath: analyze), "install the Debian package systemd")
        let scratch = ScratchDirectory()
        // The units name /usr/bin/overseerd; verify copies that name the built binary.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let units = try FileManager.default.contentsOfDirectory(atPath: root.path + "/systemd")
            .filter { $0.hasSuffix(".service") || $0.hasSuffix(".socket") }
        #expect(!units.isEmpty)
        for unit in units {
            let text = try String(contentsOfFile: root.path + "/systemd/" + unit, encoding: .utf8)
            try Data(text.replacingOccurrences(of: "/usr/bin/overseerd", with: Binaries.overseerd).utf8)
                .write(to: URL(fileURLWithPath: scratch.file(unit)))
        }
        let run = try RunningProcess([analyze, "verify"] + units.map { scratch.file($0) }, environment: ["SYSTEMD_LOG_LEVEL": "warning"])
        #expect(try run.waitForExit() == .exited(0), "\(run.stderrText)")
        #expect(run.stderrText.isEmpty, "systemd-analyze verify complained:\n\(run.stderrText)")
    }
}

enum MonotonicClock {
    static func microseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}

/// A unix datagram socket the test owns, standing in for systemd's notify socket.
final class DatagramReceiver {
    let fd: Int32

    init(_ address: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var storage = sockaddr_un()
        storage.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(address.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard rc == 0 else { throw HarnessError("cannot bind \(address): errno \(errno)") }
    }

    deinit { close(fd) }

    /// The next datagram's text, waiting at most `timeout` seconds; FDSTORE
    /// messages (and the fds they carry) are skipped unless asked for.
    func next(timeout: Double = 20, includingFDStore: Bool = false) throws -> String {
        while true {
            let (text, fds) = try nextWithFDs(timeout: timeout)
            for fd in fds { close(fd) }
            if includingFDStore || !text.hasPrefix("FDSTORE=1") { return text }
        }
    }

    /// The next datagram and the fds passed with it (the caller closes them).
    func nextWithFDs(timeout: Double = 20) throws -> (String, [Int32]) {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) == 1 else {
            throw HarnessError("no notify datagram within \(timeout)s")
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var fds = [Int32](repeating: -1, count: 16)
        var fdCount: Int32 = 0
        let count = overseer_recv_with_fds(fd, &buffer, buffer.count, &fds, 16, &fdCount)
        guard count >= 0 else { throw HarnessError("recv: errno \(errno)") }
        return (String(decoding: buffer.prefix(count), as: UTF8.self), Array(fds.prefix(Int(fdCount))))
    }

    /// Every datagram until `predicate` holds for one (included).
    func collect(until predicate: (String) -> Bool, timeout: Double = 20) throws -> [String] {
        var result: [String] = []
        while true {
            let message = try next(timeout: timeout)
            result.append(message)
            if predicate(message) { return result }
        }
    }
}

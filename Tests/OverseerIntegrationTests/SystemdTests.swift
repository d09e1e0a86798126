#if canImport(Glibc)
import Glibc
#endif
import Foundation
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
        #expect(ready == "READY=1\nSTATUS=serving generation 1 (pid \(childPID))\nMAINPID=\(run.pid)")
        run.signal(SIGTERM)
        #expect(try receiver.next() == "STOPPING=1\nSTATUS=stopping")
        _ = try run.waitForExit()
        // The child never saw overseerd's NOTIFY_SOCKET; its own is overseerd's.
        #expect(run.lines(containing: "ignored a notify message").isEmpty)
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

    /// The next datagram's text, waiting at most `timeout` seconds.
    func next(timeout: Double = 20) throws -> String {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) == 1 else {
            throw HarnessError("no notify datagram within \(timeout)s")
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count >= 0 else { throw HarnessError("recv: errno \(errno)") }
        return String(decoding: buffer.prefix(count), as: UTF8.self)
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

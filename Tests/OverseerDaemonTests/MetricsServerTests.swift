import Foundation
import Glibc
@testable import OverseerDaemon
import OverseerCore
import OverseerProtocol
import OverseerSystem
import SystemPackage
import Testing

/// The metrics endpoint on a real Reactor and a real unix socket, no process.
@Suite struct MetricsServerTests {
    /// A client on another thread: connects to `path`, sends `request`, reads
    /// until the server closes (pausing `pause` µs between reads), and keeps what it got.
    final class Client: @unchecked Sendable {
        private let lock = NSLock()
        private var received: [UInt8] = []
        private var finished = false
        var isFinished: Bool { lock.withLock { finished } }
        var bytes: [UInt8] { lock.withLock { received } }

        init(path: String, request: String, pause: UInt32 = 0) {
            Thread.detachNewThread { [self] in
                let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
                var address = sockaddr_un()
                address.sun_family = sa_family_t(AF_UNIX)
                withUnsafeMutableBytes(of: &address.sun_path) { raw in
                    for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
                }
                _ = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
                let bytes = Array(request.utf8)
                _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if count <= 0 { break }
                    lock.withLock { received += buffer.prefix(count) }
                    if pause > 0 { usleep(pause) }
                }
                close(fd)
                lock.withLock { finished = true }
            }
        }
    }

    /// A MetricsServer on a unix socket in a directory of its own.
    static func serving(health: @escaping () -> ServiceHealth = { ServiceHealth(.init(serving: (1, 10))) },
                        _ render: @escaping () -> String) throws -> (Reactor, MetricsServer, String) {
        let directory = "/tmp/overseerd-metrics-test-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try Posix.makeDirectory(directory, mode: 0o700)
        let reactor = try Reactor()
        let listener = try ListenerBinder.bind(ListenerSpec(name: try SocketName("metrics"), address: .unix(path: directory + "/m.sock")),
                                               backlog: 8, unixMode: nil)
        let (logger, _) = collectingLogger()
        return (reactor, try MetricsServer(listener: listener, loop: reactor, logger: logger, render: render, health: health),
                directory + "/m.sock")
    }

    static func stop(_ server: MetricsServer, _ path: String) {
        server.close()
        rmdir(String(path.dropLast("/m.sock".count)))
    }

    /// An answer far larger than a socket buffer reaches a client that reads slowly, whole:
    /// the rest is sent as the socket has room (EPOLLOUT), and the loop goes on meanwhile.
    @Test func aLargeAnswerIsSentAsTheClientReads() throws {
        let body = String(repeating: "x_total 1\n", count: 200_000)  // 2 MB
        let (reactor, server, path) = try Self.serving { body }
        defer { Self.stop(server, path) }
        let client = Client(path: path, request: "GET /metrics HTTP/1.1\r\n\r\n", pause: 200)
        var ticks = 0
        var tick: (() -> Void)!
        tick = { ticks += 1; _ = reactor.schedule(after: .milliseconds(1), tick) }
        tick()
        try run(reactor, timeout: .seconds(60)) { client.isFinished }
        let text = String(decoding: client.bytes, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 2000000\r\n"))
        #expect(text.hasSuffix("\r\n\r\n" + body))
        #expect(ticks > 5, "the loop ran other work while the answer was sent")
    }

    @Test func aRefusedRequestIsAnsweredAndClosed() throws {
        let (reactor, server, path) = try Self.serving { "unused\n" }
        defer { Self.stop(server, path) }
        let client = Client(path: path, request: "GET /other HTTP/1.1\r\n\r\n")
        // The client finishes on its own thread: wake the loop now and then to look.
        var tick: (() -> Void)!
        tick = { _ = reactor.schedule(after: .milliseconds(1), tick) }
        tick()
        try run(reactor) { client.isFinished }
        #expect(String(decoding: client.bytes, as: UTF8.self).hasPrefix("HTTP/1.1 404 Not Found\r\n"))
    }

    /// The probes answer the judgement of the moment, 503 when nothing serves, without the metrics.
    @Test func theProbesAnswerTheHealthOfTheMoment() throws {
        var health = ServiceHealth(.init(candidate: 1))
        let (reactor, server, path) = try Self.serving(health: { health }) { "never rendered\n" }
        defer { Self.stop(server, path) }
        var tick: (() -> Void)!
        tick = { _ = reactor.schedule(after: .milliseconds(1), tick) }
        tick()
        for (request, expected) in [("GET /readyz HTTP/1.1\r\n\r\n", "HTTP/1.1 503 Service Unavailable\r\n"), ("GET /healthz HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK\r\n")] {
            let client = Client(path: path, request: request)
            try run(reactor) { client.isFinished }
            let text = String(decoding: client.bytes, as: UTF8.self)
            #expect(text.hasPrefix(expected), "\(text)")
            #expect(text.hasSuffix("\r\n\r\n" + health.line + "\n"), "\(text)")
            health = ServiceHealth(.init(serving: (1, 10)))
        }
    }
}

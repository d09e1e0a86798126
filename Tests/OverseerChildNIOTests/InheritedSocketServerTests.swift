#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import OverseerChild
import OverseerChildNIO
import ServiceLifecycle
import Testing

/// The Service: READY=1 when serving; on graceful shutdown STOPPING=1, the
/// listener closed (not shut down), open connections drained.
@Suite(.timeLimit(.minutes(2))) struct InheritedSocketServerTests {
    @Test func gracefulShutdownClosesTheListenerAndDrains() async throws {
        let receiver = try NotifyReceiver()
        let child = OverseerChild(environment: ["NOTIFY_SOCKET": receiver.address], ownPID: getpid())
        let socket = try child.socket(named: "http", orBind: "127.0.0.1:0", backlog: 4096)
        let otherCopy = dup(socket.fd)
        defer { close(otherCopy) }
        let address = try #require(socket.localAddress)

        let server = InheritedSocketServer(socket: socket, child: child, drainTimeout: .milliseconds(300)) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(InheritedSocketBootstrapTests.Echo())
            }
        }
        let group = ServiceGroup(configuration: .init(services: [server], logger: Logger(label: "test")))
        // On a thread of its own: the blocking waits below, and other tests, hold pool threads.
        let running = Task(executorPreference: DedicatedThreadExecutor.shared) { try await group.run() }

        #expect(receiver.receive() == "READY=1")
        #expect(try roundTrip(to: address, "hello") == "hello")
        // An idle connection, open across the shutdown: the echo handler ignores the
        // quiesce event, so the drain timeout closes it.
        let idle = try connectTo(address)
        defer { close(idle) }
        #expect(try exchange(idle, "still here") == "still here")

        await group.triggerGracefulShutdown()
        #expect(receiver.receive() == "STOPPING=1")
        try await running.value
        #expect(readsEndOfStream(idle), "the idle connection was closed at the drain timeout")

        // The socket lives on for the other copy: connect and accept still work.
        let late = try connectTo(address)
        defer { close(late) }
        let accepted = accept(otherCopy, nil, nil)
        #expect(accepted >= 0)
        if accepted >= 0 { close(accepted) }
    }

    @Test func cancelledServerClosesItsConnectionsWithoutWaitingForTheDrain() async throws {
        let child = OverseerChild(environment: [:], ownPID: getpid())
        let socket = try child.socket(named: "http", orBind: "127.0.0.1:0", backlog: 4096)
        let address = try #require(socket.localAddress)
        // A drain timeout nobody would wait out: cancellation must not wait for it.
        let server = InheritedSocketServer(socket: socket, child: nil, drainTimeout: .seconds(3600)) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(InheritedSocketBootstrapTests.Echo())
            }
        }
        let running = Task(executorPreference: DedicatedThreadExecutor.shared) { try await server.run() }
        let idle = try connectTo(address)
        defer { close(idle) }
        #expect(try exchange(idle, "serving") == "serving")

        running.cancel()
        try await running.value
        #expect(readsEndOfStream(idle), "the open connection was closed on cancellation")
    }

    /// Whether the peer closed `fd` (recv returns 0) within a minute.
    func readsEndOfStream(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        var patience = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, socklen_t(MemoryLayout<timeval>.size))
        var got = recv(fd, &byte, 1, 0)
        while got < 0, errno == EINTR { got = recv(fd, &byte, 1, 0) }
        return got == 0
    }

    func exchange(_ fd: Int32, _ text: String) throws -> String {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        var count = recv(fd, &buffer, buffer.count, 0)
        while count < 0, errno == EINTR { count = recv(fd, &buffer, buffer.count, 0) }
        return String(decoding: buffer.prefix(max(0, count)), as: UTF8.self)
    }
}

/// Receives sd_notify datagrams on an abstract unix socket.
final class NotifyReceiver {
    let fd: Int32
    let address = "@overseer-nio-test-\(getpid())-\(UInt32.random(in: 0 ... .max))"

    init() throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var sockaddr = sockaddr_un()
        sockaddr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(address.utf8)
        bytes[0] = 0
        withUnsafeMutableBytes(of: &sockaddr.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let status = withUnsafePointer(to: &sockaddr) {
            $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard status == 0 else { throw TestFailure("bind \(address): errno \(errno)") }
        // Generous: in a full parallel run the machine's two cores are busy with real processes.
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var count = recv(fd, &buffer, buffer.count, 0)
        while count < 0, errno == EINTR { count = recv(fd, &buffer, buffer.count, 0) }
        return count >= 0 ? String(decoding: buffer.prefix(count), as: UTF8.self) : nil
    }
}

#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import OverseerChild
import OverseerTestSupport
@testable import OverseerChildNIO
import Testing

/// What SwiftNIO does to a listening socket it is handed, measured, and what
/// the adapter keeps of the shared socket's state.
@Suite(.timeLimit(.minutes(2))) struct InheritedSocketBootstrapTests {
    static let alone = OverseerChild(environment: [:], ownPID: getpid())

    /// A listener as overseerd makes one (blocking, backlog 4096), plus a second
    /// fd on the same socket standing for overseerd's and the other generations' copies.
    struct SharedListener {
        let socket: InheritedSocket
        let otherCopy: Int32

        init(_ address: String, backlog: Int32 = 4096) throws {
            let own = try InheritedSocketBootstrapTests.alone.socket(named: "http", orBind: address, backlog: backlog)
            socket = own
            otherCopy = dup(own.fd)
        }

        var otherCopyIsNonBlocking: Bool { fcntl(otherCopy, F_GETFL) & O_NONBLOCK != 0 }
        var backlog: Int? { InheritedSocket(fd: otherCopy, name: "copy").listenBacklog }
    }

    static func echoBootstrap() -> ServerBootstrap {
        ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
            }
    }

    final class Echo: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(data, promise: nil)
        }
    }

    @Test func plainWithBoundSocketShrinksTheBacklogAndSetsNonBlocking() async throws {
        try await onDedicatedThread {
            let listener = try SharedListener("127.0.0.1:0")
            defer { close(listener.otherCopy) }
            let port = try #require(listener.socket.localAddress?.port)
            #expect(listener.backlog == 4096)
            #expect(listenBacklog(ss: "-ltn 'sport = :\(port)'") == 4096)
            #expect(!listener.otherCopyIsNonBlocking)

            let channel = try await Self.echoBootstrap()
                .serverChannelOption(.backlog, value: 4096)  // too late: NIO already called listen(fd, 128)
                .withBoundSocket(listener.socket.fd).get()
            // Measured: NIO's listen(fd, 128) in ServerSocketChannel.init(socket:) applies to the
            // socket every copy shares, and so does its O_NONBLOCK.
            #expect(listener.backlog == 128)
            #expect(listenBacklog(ss: "-ltn 'sport = :\(port)'") == 128)
            #expect(listener.otherCopyIsNonBlocking)
            try await channel.close()
        }
    }

    @Test(arguments: ["127.0.0.1:0", "unix"])
    func adapterKeepsTheBacklogAndServes(address: String) async throws {
        try await onDedicatedThread {
            let path = "/tmp/overseer-nio-test-\(getpid())-\(UInt32.random(in: 0 ... .max)).sock"
            let listener = try SharedListener(address == "unix" ? "unix:" + path : address)
            defer { close(listener.otherCopy); unlink(path) }
            let local = try #require(listener.socket.localAddress)
            let ss = address == "unix" ? "-xl 'src \(path)'" : "-ltn 'sport = :\(local.port ?? 0)'"

            let channel = try await Self.echoBootstrap().withInheritedSocket(listener.socket).get()
            #expect(listener.backlog == 4096)
            #expect(listenBacklog(ss: ss) == 4096, "ss -l shows overseerd's backlog kept")
            #expect(listener.otherCopyIsNonBlocking, "O_NONBLOCK is shared: it cannot be avoided, only documented")
            #expect(try roundTrip(to: local, "ping") == "ping")

            // Closing the channel closes NIO's fd only: the socket still takes
            // connections for the other copy (no shutdown()).
            try await channel.close()
            let client = try connectTo(local)
            defer { close(client) }
            let accepted = accept(listener.otherCopy, nil, nil)
            #expect(accepted >= 0, "the other copy still accepts: errno \(errno)")
            if accepted >= 0 { close(accepted) }
        }
    }

    @Test func explicitBacklog() async throws {
        try await onDedicatedThread {
            let listener = try SharedListener("127.0.0.1:0")
            defer { close(listener.otherCopy) }
            let channel = try await Self.echoBootstrap().withInheritedSocket(listener.socket, backlog: .value(512)).get()
            #expect(listener.backlog == 512)
            try await channel.close()
        }
    }

    @Test func asyncBindKeepsTheBacklog() async throws {
        try await onDedicatedThread {
            let listener = try SharedListener("127.0.0.1:0")
            defer { close(listener.otherCopy) }
            let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(inherited: listener.socket) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
            #expect(listener.backlog == 4096)
            try await server.channel.close()
        }
    }

    @Test func datagramSocketIsRefusedWithAHint() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        let error = #expect(throws: InheritedListenerError.self) {
            _ = try Self.echoBootstrap().withInheritedSocket(InheritedSocket(fd: fd, name: "udp"))
        }
        #expect(error?.description.contains("DatagramBootstrap") == true)
    }
}

/// Connects a blocking client socket to `address`.
func connectTo(_ address: InheritedSocket.Address) throws -> Int32 {
    switch address {
    case let .ipv4(host, port):
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var sockaddr = sockaddr_in()
        sockaddr.sin_family = sa_family_t(AF_INET)
        sockaddr.sin_port = port.bigEndian
        sockaddr.sin_addr.s_addr = inet_addr(host)
        let status = withUnsafePointer(to: &sockaddr) {
            $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else { close(fd); throw TestFailure("connect \(address): errno \(errno)") }
        return fd
    case let .unix(path):
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var sockaddr = sockaddr_un()
        sockaddr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sockaddr.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let status = withUnsafePointer(to: &sockaddr) {
            $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard status == 0 else { close(fd); throw TestFailure("connect \(address): errno \(errno)") }
        return fd
    default:
        throw TestFailure("cannot connect to \(address)")
    }
}

/// Sends `text` and reads as many bytes back.
func roundTrip(to address: InheritedSocket.Address, _ text: String) throws -> String {
    let fd = try connectTo(address)
    defer { close(fd) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1024)
    while received.count < bytes.count {
        let count = recv(fd, &buffer, buffer.count, 0)
        // Other suites in this process send themselves signals.
        if count < 0, errno == EINTR { continue }
        guard count > 0 else { break }
        received += buffer.prefix(count)
    }
    return String(decoding: received, as: UTF8.self)
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

#if canImport(Glibc)
import Glibc
#endif
@testable import OverseerChild
import OverseerTestSupport
import Testing

/// Type, address and backlog of real sockets, and the fallback that binds them.
@Suite struct SocketTests {
    let alone = OverseerChild(environment: [:], ownPID: getpid())

    @Test func tcpListener() throws {
        let socket = try alone.socket(named: "http", orBind: "127.0.0.1:0", backlog: 77)
        defer { socket.close() }
        #expect(!socket.isInherited)
        #expect(socket.name == "http")
        #expect(socket.type == .stream)
        #expect(socket.family == AF_INET)
        #expect(socket.isListening)
        #expect(!socket.isNonBlocking)
        let address = try #require(socket.localAddress)
        let port = try #require(address.port)
        #expect(address == .ipv4(host: "127.0.0.1", port: port) && port != 0)
        #expect(socket.description == "http (fd \(socket.fd), stream 127.0.0.1:\(port))")
        #expect(socket.listenBacklog == 77)
        #expect(listenBacklog(ss: "-ltn 'sport = :\(port)'") == 77, "ss agrees")
        #expect(fcntl(socket.fd, F_GETFD) & FD_CLOEXEC != 0)
    }

    @Test func ipv6Listener() throws {
        guard let socket = try? alone.socket(named: "v6", orBind: "[::1]:0") else { return }  // no IPv6 here
        defer { socket.close() }
        let port = try #require(socket.localAddress?.port)
        #expect(socket.localAddress == .ipv6(host: "::1", port: port))
        #expect(socket.localAddress?.description == "[::1]:\(port)")
        #expect(socket.listenBacklog == 4096 || socket.listenBacklog == InheritedSocket.systemMaximumBacklog)
    }

    @Test func unixListeners() throws {
        let path = "/tmp/overseer-child-test-\(getpid())-\(UInt32.random(in: 0 ... .max)).sock"
        let file = try alone.socket(named: "admin", orBind: "unix:" + path, backlog: 33)
        defer { file.close(); unlink(path) }
        #expect(file.type == .stream)
        #expect(file.family == AF_UNIX)
        #expect(file.localAddress == .unix(path: path))
        #expect(file.listenBacklog == 33)
        #expect(listenBacklog(ss: "-xl 'src \(path)'") == 33, "ss agrees")

        let name = "overseer-child-test-\(getpid())-abstract"
        let abstract = try alone.socket(named: "admin", orBind: "unix:@" + name, backlog: 12)
        defer { abstract.close() }
        #expect(abstract.localAddress == .unix(path: "@" + name))
        #expect(abstract.localAddress?.description == "unix:@" + name)
        #expect(abstract.listenBacklog == 12)
    }

    @Test func staleUnixSocketFileIsReplaced() throws {
        let path = "/tmp/overseer-child-test-stale-\(getpid()).sock"
        let first = try alone.socket(named: "a", orBind: "unix:" + path)
        first.close()  // the file stays, nobody accepts on it
        let second = try alone.socket(named: "a", orBind: "unix:" + path)
        defer { second.close(); unlink(path) }
        #expect(second.isListening)
    }

    @Test func datagramSocket() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        let socket = InheritedSocket(fd: fd, name: "udp")
        #expect(socket.type == .datagram)
        #expect(!socket.isListening)
        #expect(socket.listenBacklog == nil)
        #expect(socket.localAddress?.port != 0)
    }

    @Test func notASocket() {
        var fds: [Int32] = [0, 0]
        pipe(&fds)
        defer { close(fds[0]); close(fds[1]) }
        let socket = InheritedSocket(fd: fds[0], name: "pipe")
        #expect(socket.type == nil)
        #expect(socket.localAddress == nil)
        #expect(socket.listenBacklog == nil)
        #expect(socket.description == "pipe (fd \(fds[0]), not a socket)")
    }

    @Test func fallbackIsNotUsedWhenSocketsWerePassed() throws {
        let passed = OverseerChild(environment: ["LISTEN_FDS": "1", "LISTEN_PID": "9", "LISTEN_FDNAMES": "web"], ownPID: 9)
        let error = #expect(throws: OverseerChildError.self) { try passed.socket(named: "http", orBind: "127.0.0.1:0") }
        #expect(error?.code == .noSocket)
        #expect(error?.description.contains("passed: web") == true)
        #expect(try passed.socket(named: "web", orBind: "127.0.0.1:0") == InheritedSocket(fd: 3, name: "web"))
    }

    @Test(arguments: ["127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", "unix:", "no-such-host.invalid:80"])
    func badFallbackAddresses(address: String) {
        let error = #expect(throws: OverseerChildError.self) { try alone.socket(named: "x", orBind: address) }
        #expect(error?.code == .badAddress, "\(String(describing: error))")
    }

    @Test func addressInUseSaysSo() throws {
        let first = try alone.socket(named: "a", orBind: "127.0.0.1:0")
        defer { first.close() }
        let port = try #require(first.localAddress?.port)
        // SO_REUSEADDR does not let a second socket listen on a port that is listening.
        let error = #expect(throws: OverseerChildError.self) { try alone.socket(named: "b", orBind: "127.0.0.1:\(port)") }
        #expect(error?.description == "cannot listen on 127.0.0.1:\(port): bind: address already in use (errno 98)")
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerProtocol
@testable import OverseerSystem
import OverseerTestSupport
import Testing

@Suite struct ListenerBinderTests {
    private func connect(family: Int32, address: String, port: UInt16) -> Bool {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        if family == AF_INET {
            var storage = sockaddr_in()
            storage.sin_family = sa_family_t(AF_INET)
            storage.sin_port = port.bigEndian
            inet_pton(AF_INET, address, &storage.sin_addr)
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            } == 0
        }
        var storage = sockaddr_in6()
        storage.sin6_family = sa_family_t(AF_INET6)
        storage.sin6_port = port.bigEndian
        inet_pton(AF_INET6, address, &storage.sin6_addr)
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        } == 0
    }

    private func port(of listener: Listener) -> UInt16 {
        UInt16(listener.localAddress.split(separator: ":").last!)!
    }

    @Test func allInterfacesIsDualStack() throws {
        let listener = try ListenerBinder.bind(ListenerSpec(parsing: "any=:0"), backlog: 16, unixMode: nil)
        defer { ListenerBinder.close([listener]) }
        #expect(listener.kind == "tcp")
        #expect(connect(family: AF_INET, address: "127.0.0.1", port: port(of: listener)))
        let hasIPv6 = (try? String(contentsOfFile: "/proc/net/if_inet6", encoding: .utf8)).map { !$0.isEmpty } ?? false
        if hasIPv6 {
            #expect(listener.localAddress.hasPrefix("[::]:"))
            #expect(connect(family: AF_INET6, address: "::1", port: port(of: listener)))
        }
    }

    @Test func socketsAreCloseOnExecInOverseerd() throws {
        let listener = try ListenerBinder.bind(ListenerSpec(parsing: "127.0.0.1:0"), backlog: 16, unixMode: nil)
        defer { ListenerBinder.close([listener]) }
        #expect(fcntl(listener.fd.rawValue, F_GETFD) & FD_CLOEXEC != 0)
    }

    @Test func backlogIsTheOneAsked() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/ss"), "ss (iproute2) is missing")
        let listener = try ListenerBinder.bind(ListenerSpec(parsing: "127.0.0.1:0"), backlog: 77, unixMode: nil)
        defer { ListenerBinder.close([listener]) }
        // For a listening socket, ss shows the backlog as Send-Q.
        #expect(listenBacklog(ss: "-ltn 'sport = :\(port(of: listener))'") == 77)
    }

    @Test func udpIsBoundWithoutListening() throws {
        let listener = try ListenerBinder.bind(ListenerSpec(parsing: "dns=udp:127.0.0.1:0"), backlog: 16, unixMode: nil)
        defer { ListenerBinder.close([listener]) }
        #expect(listener.kind == "udp")
        #expect(listener.name.rawValue == "dns")
        #expect(listener.localAddress.hasPrefix("127.0.0.1:"))
    }

    @Test func abstractUnixSocketLeavesNoFile() throws {
        let name = "@overseerd-test-\(UInt32.random(in: 0 ... .max))"
        let listener = try ListenerBinder.bind(ListenerSpec(parsing: "unix:\(name)"), backlog: 16, unixMode: nil)
        defer { ListenerBinder.close([listener]) }
        #expect(listener.localAddress == "unix:\(name)")
        #expect(listener.createdPath == nil)
    }

    @Test func unixSocketGetsItsModeAndIsRemovedOnClose() throws {
        let directory = NSTemporaryDirectory() + "overseerd-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/s.sock"
        let listener = try ListenerBinder.bind(ListenerSpec(parsing: "unix:\(path)"), backlog: 16, unixMode: 0o640)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o640)
        ListenerBinder.close([listener])
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func missingDirectoryIsExplained() throws {
        #expect(throws: ListenError.self) {
            try ListenerBinder.bind(ListenerSpec(parsing: "unix:/nonexistent-dir/x.sock"), backlog: 16, unixMode: nil)
        }
        let spec = try ListenerSpec(parsing: "web=unix:/nonexistent-dir/x.sock")
        do {
            _ = try ListenerBinder.bind(spec, backlog: 16, unixMode: nil)
            Issue.record("bound a socket in a directory that does not exist")
        } catch {
            #expect(error.description == "cannot listen on unix:/nonexistent-dir/x.sock (web): no such file or directory — the directory does not exist; create it first")
        }
    }
}

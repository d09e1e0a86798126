#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import Testing

/// OverseerChild in a real child process.
@Suite struct ChildLibraryTests {
    /// A listening socket with one connection waiting in its queue.
    struct ListenerWithPendingConnection {
        let listener: Int32
        let client: Int32

        init() throws {
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(server, pointer, length) == 0 && listen(server, 16) == 0 && getsockname(server, pointer, &length) == 0
                }
            }
            guard bound else { throw HarnessError("bind/listen: errno \(errno)") }
            let connecting = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let status = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(connecting, $0, length) }
            }
            guard status == 0 else { throw HarnessError("connect: errno \(errno)") }
            listener = server
            client = connecting
        }

        /// Whether the queued connection is still there, i.e. nobody accepted it.
        func pendingConnectionIsStillQueued() -> Bool {
            _ = fcntl(listener, F_SETFL, O_NONBLOCK)
            let accepted = accept(listener, nil, nil)
            if accepted >= 0 { Glibc.close(accepted) }
            return accepted >= 0
        }

        func close() {
            Glibc.close(listener)
            Glibc.close(client)
        }
    }

    @Test func upgradeCheckIsAnsweredBeforeTheProgramTouchesItsSockets() throws {
        let scratch = ScratchDirectory()
        let shared = try ListenerWithPendingConnection()
        defer { shared.close() }
        let report = scratch.file("report")
        let run = try RunningProcess(
            [Binaries.testChild],
            environment: ["OVERSEER_CHECK_TOKEN": "token-4b1d", "OTC_SERVE": "1", "OTC_REPORT": report,
                          "LISTEN_FDS": "1", "LISTEN_FDNAMES": "http"],
            extraFDs: [shared.listener])
        #expect(try run.waitForExit() == .exited(0))
        #expect(run.stdoutText == "token-4b1d\n")
        #expect(!FileManager.default.fileExists(atPath: report), "it reported (read its environment and fds) before answering")
        #expect(shared.pendingConnectionIsStillQueued(), "it accepted on its socket before answering")
    }
}

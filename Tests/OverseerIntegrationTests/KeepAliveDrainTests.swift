#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerTestSupport
import Testing

/// examples/go under overseerd with HTTP/1.1 clients that keep their
/// connections open across requests, as a load balancer's upstream pool does:
/// no request may go unanswered across restarts.
///
/// The race this guards against: a server that closes an idle keep-alive
/// connection on its stop signal (Go's `http.Server.Shutdown` alone) can close
/// it just as the client has sent its next request there; the client then
/// reads EOF or a reset instead of an answer. The example answers requests
/// with `Connection: close` during a grace period first.
@Suite struct KeepAliveDrainTests {
    @Test(.enabled(if: ExampleGoTests.go != nil, "go (Debian package golang-go) is not installed: run scripts/setup"),
          .timeLimit(.minutes(5)))
    func goExampleAnswersEveryKeepAliveRequestAcrossTenRestarts() throws {
        let scratch = ScratchDirectory()
        let hello = try ExampleGoTests.build(into: scratch)
        let run = try RunningProcess.overseerd(["--ready", "notify", "--stop-timeout", "20s",
                                                "-l", "http=127.0.0.1:0", "--", hello])
        let port = try run.listenerPort("http")
        var serving = try Examples.pid(afterStarted: 1, in: run)
        try run.waitForLine(containing: "generation 1 is ready", timeout: 30)

        let clients = KeepAliveClients(port: port, count: 4, maxRequests: 500_000, maxSeconds: 120)
        defer { _ = clients.stop() } // also when a wait below throws
        let restarts = 10
        var pids = [serving]
        for generation in 2 ... restarts + 1 {
            // Every client on a kept-alive connection to the generation about to be stopped.
            #expect(clients.waitUntilEachAnswered(by: serving, within: 20),
                    "before restart \(generation - 1): clients last answered by \(clients.lastPids), want \(serving)")
            run.signal(SIGUSR2)
            serving = try Examples.pid(afterStarted: generation, in: run)
            pids.append(serving)
            try run.waitForLine(containing: "generation \(generation) is ready; stopping generation \(generation - 1)",
                                timeout: 30)
        }
        try run.waitForLine(containing: "generation \(restarts) stopped", timeout: 30)
        #expect(clients.waitUntilEachAnswered(by: serving, within: 20))
        let result = clients.stop()

        #expect(result.failures.isEmpty,
                "\(result.failures.count) of \(result.answered + result.failures.count) requests not answered; first: \(result.failures.prefix(5))")
        #expect(run.lines(containing: "restart failed").isEmpty)
        // The drain path was taken: the old generations answered with Connection: close.
        #expect(result.answeredWithClose >= restarts,
                "\(result.answeredWithClose) answers with Connection: close in \(restarts) restarts")
        #expect(result.pids == Set(pids), "answered by \(result.pids.sorted()), generations were \(pids)")

        run.signal(SIGTERM)
        _ = try run.waitForExit(timeout: 30)
    }
}

/// Threads that each send HTTP/1.1 requests one after another on a kept-alive
/// connection, and open a new one only when an answer says `Connection: close`.
/// A request that gets no whole answer (EOF, reset, timeout) is a failure.
/// Bounded: each thread stops after `maxRequests` requests or `maxSeconds`.
final class KeepAliveClients: @unchecked Sendable {
    struct Result {
        var answered = 0
        var answeredWithClose = 0
        var failures: [String] = []
        var pids: Set<Int32> = []
    }

    private let lock = NSLock()
    private var result = Result()
    private var last: [Int32]
    private var running = true
    private let done = DispatchSemaphore(value: 0)
    private let count: Int

    init(port: UInt16, count: Int, maxRequests: Int, maxSeconds: Double) {
        self.count = count
        last = Array(repeating: 0, count: count)
        let deadline = Date().addingTimeInterval(maxSeconds)
        for index in 0 ..< count {
            Thread.detachNewThread { [self] in
                var connection: Int32 = -1
                var requests = 0
                while lock.withLock({ running }), requests < maxRequests, Date() < deadline {
                    requests += 1
                    do {
                        if connection < 0 { connection = try Self.connect(port: port) }
                        let (response, closing) = try Self.exchange(connection)
                        lock.withLock {
                            result.answered += 1
                            if closing { result.answeredWithClose += 1 }
                            if let pid = response.pid {
                                result.pids.insert(pid)
                                last[index] = pid
                            }
                            if response.status != 200 { result.failures.append("status \(response.status)") }
                        }
                        if closing {
                            close(connection)
                            connection = -1
                        }
                    } catch {
                        lock.withLock { result.failures.append("\(error)") }
                        close(connection)
                        connection = -1
                    }
                }
                if connection >= 0 { close(connection) }
                done.signal()
            }
        }
    }

    /// The pid that last answered each client.
    var lastPids: [Int32] { lock.withLock { last } }

    /// Waits until every client got an answer from `pid` as its latest.
    func waitUntilEachAnswered(by pid: Int32, within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if lastPids.allSatisfy({ $0 == pid }) { return true }
            usleep(1000)
        }
        return false
    }

    /// Stops the threads and returns what they saw (again on a second call).
    func stop() -> Result {
        let first = lock.withLock {
            defer { running = false }
            return running
        }
        if first {
            for _ in 0 ..< count { done.wait() }
        }
        return lock.withLock { result }
    }

    private struct Failure: Error, CustomStringConvertible { let description: String }

    private static func connect(port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        var rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0, errno == EINTR {
            // The connection goes on after an interrupted connect(): wait until it is writable.
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            rc = poll(&poller, 1, 10_000) == 1 ? 0 : -1
        }
        guard rc == 0 else {
            let error = errno
            close(fd)
            throw Failure(description: "connect: errno \(error)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var limit = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// One request and its answer on `fd`; whether the answer closes the connection.
    private static func exchange(_ fd: Int32) throws -> (HTTPResponse, Bool) {
        let request = Array("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count > 0 { sent += count; continue }
            if count < 0, errno == EINTR { continue }
            throw Failure(description: "send: errno \(errno)")
        }
        // Go's answer here is small and carries Content-Length: read until head and body are in.
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let separator = Array("\r\n\r\n".utf8)
        while true {
            if let end = received.indices.first(where: { received[$0...].starts(with: separator) }) {
                let head = String(decoding: received[..<end], as: UTF8.self).components(separatedBy: "\r\n")
                var headers: [String: String] = [:]
                for line in head.dropFirst() {
                    if let colon = line.firstIndex(of: ":") {
                        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                    }
                }
                let length = Int(headers["content-length"] ?? "") ?? -1
                guard length >= 0 else { throw Failure(description: "no Content-Length in \(head)") }
                if received.count >= end + separator.count + length {
                    let body = String(decoding: received[(end + separator.count)...], as: UTF8.self)
                    let status = head.first?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
                    let closing = headers["connection"]?.lowercased() == "close"
                    return (HTTPResponse(status: status, headers: headers, body: body), closing)
                }
            }
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 { received += buffer.prefix(count); continue }
            if count < 0, errno == EINTR { continue }
            throw Failure(description: count == 0 ? "EOF after \(received.count) bytes of the answer"
                                                  : "recv: errno \(errno) after \(received.count) bytes of the answer")
        }
    }
}

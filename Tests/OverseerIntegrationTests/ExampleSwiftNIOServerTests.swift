#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// Shared by the Example*Tests: run an example under overseerd, restart it
/// once, and check that each generation answered.
enum Examples {
    /// The repository's examples/ directory.
    static let directory: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { url.deleteLastPathComponent() }
        return url.path + "/examples"
    }()

    /// The full path of `program` on PATH, or nil.
    static func which(_ program: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(program)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func pid(afterStarted generation: Int, in run: RunningProcess) throws -> Int32 {
        let line = try run.waitForLine(containing: "generation \(generation) started: pid ")
        guard let pid = GracefulRestartTests.pid(in: line, after: "pid") else {
            throw HarnessError("no pid in \"\(line)\"")
        }
        return pid
    }

    /// Starts `program` under overseerd on `http=127.0.0.1:0`, checks that
    /// generation 1 answers, restarts once, checks that generation 2 answers
    /// from another pid once generation 1 stopped, and stops overseerd.
    /// `between` runs after the first answer, before the restart is asked for;
    /// `during` right after generation 2 is ready.
    static func restartOnce(_ program: [String], ready: String = "notify", environment: [String: String] = [:],
                            between: (RunningProcess, UInt16) throws -> Void = { _, _ in },
                            during: (RunningProcess, UInt16) throws -> Void = { _, _ in }) throws {
        let run = try RunningProcess.overseerd(["--ready", ready, "--stop-timeout", "20s", "-l", "http=127.0.0.1:0", "--"] + program,
                                               environment: environment)
        let port = try run.listenerPort("http")
        let first = try pid(afterStarted: 1, in: run)
        try run.waitForLine(containing: "generation 1 is ready", timeout: 30)
        let answer1 = try HTTPClient.get(port: port)
        #expect(answer1.status == 200)
        #expect(answer1.pid == first, "generation 1 answered: \(answer1.headers) \(answer1.body)")
        try between(run, port)

        run.signal(SIGUSR2)
        let second = try pid(afterStarted: 2, in: run)
        try run.waitForLine(containing: "generation 2 is ready; stopping generation 1", timeout: 30)
        try during(run, port)
        try run.waitForLine(containing: "generation 1 stopped", timeout: 30)
        #expect(!Processes.isAlive(first))
        let answer2 = try HTTPClient.get(port: port)
        #expect(answer2.status == 200)
        #expect(answer2.pid == second, "generation 2 answered: \(answer2.headers) \(answer2.body)")
        #expect(first != second)
        #expect(run.lines(containing: "restart failed").isEmpty)

        run.signal(SIGTERM)
        _ = try run.waitForExit(timeout: 30)
    }

    /// Runs `arguments` with OVERSEER_CHECK_TOKEN set, as overseerd's upgrade
    /// check does, and returns its exit and stdout.
    static func answerToCheck(_ arguments: [String], environment: [String: String] = [:]) throws -> (ProcessExit, String) {
        let token = "check-\(UInt32.random(in: 0 ... .max))"
        let run = try RunningProcess(arguments, environment: environment.merging(["OVERSEER_CHECK_TOKEN": token]) { $1 })
        let exit = try run.waitForExit(timeout: 30)
        return (exit, run.stdoutText == token + "\n" ? "token" : run.stdoutText)
    }
}

/// examples/swift-nio-server under overseerd: READY on start, graceful drain
/// on SIGTERM, keep-alive connections answered with `Connection: close`.
@Suite struct ExampleSwiftNIOServerTests {
    static var server: String { Binaries.directory + "/OverseerExampleNIOServer" }

    @Test func restartsOnceWithAnAnswerFromEachGeneration() throws {
        try Examples.restartOnce([Self.server])
    }

    @Test func requestInFlightIsAnsweredWithConnectionCloseDuringTheDrain() throws {
        var keepAlive: KeepAliveConnection?
        var backlogWhileBothRun: Int?
        try Examples.restartOnce([Self.server], between: { run, port in
            let connection = try KeepAliveConnection(port: port)
            let first = try connection.request("/")
            #expect(first.status == 200)
            #expect(first.headers["connection"] == nil, "HTTP/1.1 keep-alive before the stop: \(first.headers)")
            // Held by the server until it is asked to stop.
            try connection.send("/hold")
            keepAlive = connection
        }, during: { run, port in
            let connection = try #require(keepAlive)
            let held = try connection.readResponse()
            #expect(held.status == 200)
            #expect(held.headers["connection"] == "close", "\(held.headers)")
            #expect(held.body.hasPrefix("hello from pid \(held.pid ?? 0) generation 1"))
            #expect(connection.isClosedByPeer(), "the draining server closed the keep-alive connection")
            backlogWhileBothRun = listenBacklog(ss: "-ltn 'sport = :\(port)'")
            try run.waitForLine(containing: "generation 1 is stopping")
        })
        // The adapter re-listens with the backlog overseerd chose (4096), not NIO's 128.
        #expect(backlogWhileBothRun == 4096)
    }

    @Test func answersTheUpgradeCheck() throws {
        let (exit, output) = try Examples.answerToCheck([Self.server])
        #expect(exit == .exited(0))
        #expect(output == "token")
    }
}

/// One HTTP/1.1 connection kept open across requests.
final class KeepAliveConnection {
    let fd: Int32
    private var buffered: [UInt8] = []

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else { close(fd); throw HarnessError("connect to 127.0.0.1:\(port): errno \(errno)") }
        var limit = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ path: String) throws {
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            throw HarnessError("send: errno \(errno)")
        }
    }

    func request(_ path: String) throws -> HTTPResponse {
        try send(path)
        return try readResponse()
    }

    /// Reads one response with a Content-Length body.
    func readResponse() throws -> HTTPResponse {
        let separator = Array("\r\n\r\n".utf8)
        while true {
            if let end = buffered.indices.first(where: { buffered[$0...].starts(with: separator) }) {
                let head = String(decoding: buffered[..<end], as: UTF8.self).components(separatedBy: "\r\n")
                var headers: [String: String] = [:]
                for line in head.dropFirst() {
                    if let colon = line.firstIndex(of: ":") {
                        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                    }
                }
                let length = Int(headers["content-length"] ?? "0") ?? 0
                let bodyStart = end + separator.count
                if buffered.count >= bodyStart + length {
                    let body = String(decoding: buffered[bodyStart ..< bodyStart + length], as: UTF8.self)
                    buffered.removeFirst(bodyStart + length)
                    let status = head.first?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
                    return HTTPResponse(status: status, headers: headers, body: body)
                }
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &chunk, chunk.count, 0)
            guard count > 0 else { throw HarnessError("connection ended (\(count), errno \(errno)) before a whole response") }
            buffered += chunk.prefix(count)
        }
    }

    /// Whether the server closed the connection (EOF within the receive timeout).
    func isClosedByPeer() -> Bool {
        var byte: UInt8 = 0
        return buffered.isEmpty && recv(fd, &byte, 1, 0) == 0
    }
}

import Logging
import OverseerCore
import OverseerProtocol
import OverseerSystem
import SystemPackage

/// `--metrics-listen`: answers `GET /metrics` (and the probes `GET /healthz`, `GET /readyz`) over plain HTTP/1.1 on the
/// event loop, one request per connection. Nothing a client does can hold the
/// loop: at most `maximumConnections` at once (then the listener rests, as the
/// control socket's does), a request head of at most `MetricsHTTP.maximumHeadLength`
/// bytes, reads and writes that never block, and `connectionTimeout` for the
/// whole exchange, after which the connection is dropped, answered or not.
/// The listener is close-on-exec and not among the child's sockets.
final class MetricsServer {
    static let maximumConnections = 16
    static let connectionTimeout = Duration.seconds(5)

    private final class Connection {
        let fd: FileDescriptor
        var watch: WatchToken?
        var deadline: DeadlineToken?
        var received: [UInt8] = []
        /// The answer, and how much of it is sent.
        var answer: [UInt8] = []
        var sent = 0
        init(fd: FileDescriptor) { self.fd = fd }
    }

    private let loop: EventScheduling
    private let logger: Logger
    /// The metrics text at the moment of the request.
    private let render: () -> String
    /// The service's health at the moment of a probe (`/healthz`, `/readyz`).
    private let judgeHealth: () -> ServiceHealth
    let listener: Listener
    private var acceptor: ConnectionAcceptor?
    private var connections: [Int32: Connection] = [:]

    /// Serves on `listener` (bound, or taken over from an earlier image).
    init(listener: Listener, loop: EventScheduling, logger: Logger, render: @escaping () -> String,
         health: @escaping () -> ServiceHealth) throws(SystemError) {
        self.listener = listener
        self.loop = loop
        self.logger = logger
        self.render = render
        self.judgeHealth = health
        try Posix.setCloseOnExec(listener.fd.rawValue)
        try Posix.setNonBlocking(listener.fd.rawValue)
        acceptor = try ConnectionAcceptor(
            listener: listener.fd, label: "metrics endpoint", events: (.metricsRefused, .metricsEndpoint), limit: Self.maximumConnections, loop: loop, logger: logger,
            open: { [unowned self] in connections.count }, accepted: { [unowned self] fd in accepted(fd) })
    }

    /// Closes every connection and the listener (removing a socket file overseerd made).
    func close() {
        acceptor?.stop()
        for connection in connections.values { drop(connection) }
        ListenerBinder.close([listener])
    }

    private func accepted(_ fd: FileDescriptor) {
        let connection = Connection(fd: fd)
        connections[fd.rawValue] = connection
        do {
            connection.watch = try loop.watch(fd) { [unowned self, unowned connection] in read(connection) }
        } catch {
            drop(connection)
            return
        }
        connection.deadline = loop.schedule(after: Self.connectionTimeout) { [unowned self, weak connection] in
            guard let connection, connections[connection.fd.rawValue] === connection else { return }
            connection.deadline = nil
            drop(connection)
        }
    }

    private func read(_ connection: Connection) {
        let room = MetricsHTTP.maximumHeadLength - connection.received.count
        var chunk = [UInt8](repeating: 0, count: max(room, 1))
        let result: Posix.ReadResult
        do { result = try Posix.read(connection.fd, into: &chunk) } catch {
            drop(connection)
            return
        }
        switch result {
        case .wouldBlock:
            return
        case .endOfFile:
            drop(connection)
            return
        case let .bytes(count):
            connection.received += chunk.prefix(count)
        }
        let answer: [UInt8]
        switch MetricsHTTP.judge(connection.received) {
        case .incomplete:
            return
        case let .metrics(headOnly):
            answer = MetricsHTTP.response(status: 200, reason: "OK", contentType: MetricsText.contentType,
                                          body: render(), headOnly: headOnly)
        case let .health(headOnly):
            let health = judgeHealth()
            answer = MetricsHTTP.response(status: health.healthy ? 200 : 503, reason: health.healthy ? "OK" : "Service Unavailable",
                                          contentType: "text/plain; charset=utf-8", body: health.line + "\n", headOnly: headOnly)
        case let .refuse(status, reason):
            answer = MetricsHTTP.response(status: status, reason: reason, contentType: "text/plain; charset=utf-8",
                                          body: "\(reason)\n")
        }
        connection.received = []
        connection.answer = answer
        if let watch = connection.watch { loop.unwatch(watch) }
        connection.watch = nil
        write(connection)
    }

    /// Sends what the socket takes; the rest waits for room (EPOLLOUT), within the deadline.
    private func write(_ connection: Connection) {
        guard let count = StreamSocket.sendSome(connection.answer[connection.sent...], to: connection.fd) else {
            drop(connection)
            return
        }
        connection.sent += count
        if connection.sent == connection.answer.count {
            StreamSocket.shutdownWrite(connection.fd)
            drop(connection)
            return
        }
        guard connection.watch == nil else { return }
        do {
            connection.watch = try loop.watchWritable(connection.fd) { [unowned self, unowned connection] in write(connection) }
        } catch {
            drop(connection)
        }
    }

    private func drop(_ connection: Connection) {
        loop.cancel(connection.deadline)
        if let watch = connection.watch { loop.unwatch(watch) }
        connections[connection.fd.rawValue] = nil
        Posix.close(connection.fd)
    }
}

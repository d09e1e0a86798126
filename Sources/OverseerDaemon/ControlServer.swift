import Glibc
import Logging
import OverseerCore
import OverseerProtocol
import OverseerSystem
import SystemPackage

/// What the control socket may ask of the daemon, and nothing more.
protocol ControlTarget: AnyObject {
    func statusText() -> String
    func statusJSON() -> JSONText
    /// The metrics in the Prometheus text format.
    func metricsText() -> String
    /// Whether a generation serves, and one line saying so.
    func health() -> ServiceHealth
    /// The generation started last: a `restart --wait` waits for a newer one.
    var newestGeneration: Int { get }
    func requestRestart(reason: String)
    func requestReexec(reason: String, completion: @escaping (Bool, String) -> Void)
    /// Takes a rejected binary off the list; the answer's text, and whether it was there.
    func forget(_ sha256: String) -> (Bool, String)
    /// `overseerd forget-keys`: back to the command line's manifest keys; answered once that is on disk.
    func forgetKeys(completion: @escaping (Bool, String) -> Void)
}

/// The unix socket `overseerd status` and `overseerd restart` talk to. Only
/// root and overseerd's own user are served (SO_PEERCRED); each connection
/// sends one request line and gets one answer. At most
/// `maximumConnections` are open at once; when the fd table is full, the
/// listener is left alone for a moment instead of failing in a tight loop.
final class ControlServer {
    static let maximumConnections = 32
    static let requestTimeout = Duration.seconds(5)

    private final class Connection {
        let fd: FileDescriptor
        var watch: WatchToken?
        var deadline: DeadlineToken?
        var buffer: [UInt8] = []
        let peerPID: Int32
        /// A `restart --wait` or `reexec` caller waiting for its answer.
        var waitingAfter: Int?
        init(fd: FileDescriptor, peerPID: Int32) {
            self.fd = fd
            self.peerPID = peerPID
        }
    }

    private let loop: EventScheduling
    private weak var target: ControlTarget?
    private let logger: Logger
    private let listener: Listener
    private var acceptor: ConnectionAcceptor?
    private var connections: [Int32: Connection] = [:]
    private var refusedLogged = WarningThrottle()
    let path: String

    /// The listening fd (handed to a re-executed image).
    var fd: FileDescriptor { listener.fd }

    /// Takes over the socket an earlier image of overseerd listened on.
    init(adopting fd: FileDescriptor, path: String, loop: EventScheduling, target: ControlTarget, logger: Logger) throws {
        self.loop = loop
        self.target = target
        self.logger = logger
        self.path = path
        listener = Listener(fd: fd, name: try SocketName("control"), origin: .bound(.unix(path: path)),
                            localAddress: "unix:\(path)", kind: "unix", createdPath: path)
        try Posix.setCloseOnExec(fd.rawValue)
        try Posix.setNonBlocking(fd.rawValue)
        try watchListener()
    }

    /// - Parameter ownDirectory: the socket's directory is overseerd's own (the
    ///   default path): it is made 0700, and refused when another user owns it or
    ///   could write it, since whoever can write it could answer in overseerd's place.
    ///   A directory named by --control-socket is made if missing and otherwise
    ///   left as the operator set it up.
    init(path: String, ownDirectory: Bool, loop: EventScheduling, target: ControlTarget, logger: Logger) throws {
        self.loop = loop
        self.target = target
        self.logger = logger
        self.path = path
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if ownDirectory, !directory.isEmpty {
            try RuntimeDirectory.prepare(directory: directory)
        } else if !directory.isEmpty {
            try Posix.makeDirectory(directory, mode: 0o700)
        }
        let spec = ListenerSpec(name: try SocketName("control"), address: .unix(path: path))
        listener = try ListenerBinder.bind(spec, backlog: 16, unixMode: 0o600)
        try Posix.setNonBlocking(listener.fd.rawValue)
        try watchListener()
    }

    private func watchListener() throws(SystemError) {
        acceptor = try ConnectionAcceptor(
            listener: listener.fd, label: "control socket", events: (.controlRefused, .controlSocket), limit: Self.maximumConnections, loop: loop, logger: logger,
            open: { [unowned self] in connections.count }, accepted: { [unowned self] fd in accepted(fd) })
    }

    func close() {
        for connection in connections.values { Posix.close(connection.fd) }
        ListenerBinder.close([listener])
    }

    private func accepted(_ fd: FileDescriptor) {
        let credentials = try? StreamSocket.peerCredentials(fd)
        guard let credentials, credentials.uid == 0 || credentials.uid == Posix.effectiveUserID else {
            if refusedLogged.admit("refused", now: MonotonicTimer.now).show {
                logger.log(.warning, .controlRefused, "control socket: refused a connection from uid \(credentials.map { String($0.uid) } ?? "?") (pid \(credentials.map { String($0.pid) } ?? "?")): only root and uid \(Posix.effectiveUserID) may control overseerd")
            }
            StreamSocket.send(Array("\(ControlAnswer.error) permission denied: only root and the daemon's own user may control overseerd\n".utf8), to: fd)
            Posix.close(fd)
            return
        }
        let connection = Connection(fd: fd, peerPID: credentials.pid)
        connections[fd.rawValue] = connection
        do {
            connection.watch = try loop.watch(fd) { [unowned self, unowned connection] in read(connection) }
        } catch {
            finish(connection, "\(ControlAnswer.error) \(error)\n")
            return
        }
        connection.deadline = loop.schedule(after: Self.requestTimeout) { [unowned self, weak connection] in
            guard let connection, connections[connection.fd.rawValue] === connection, connection.waitingAfter == nil else { return }
            finish(connection, "\(ControlAnswer.error) no request within \(Self.requestTimeout.shortDescription)\n")
        }
    }

    private func read(_ connection: Connection) {
        var chunk = [UInt8](repeating: 0, count: 512)
        let result: Posix.ReadResult
        do { result = try Posix.read(connection.fd, into: &chunk) } catch {
            drop(connection)
            return
        }
        guard case let .bytes(count) = result else {
            // The client went away (a `restart --wait` caller that gave up, say).
            if result == .endOfFile { drop(connection) }
            return
        }
        guard connection.waitingAfter == nil else { return }
        connection.buffer += chunk.prefix(count)
        guard let newline = connection.buffer.firstIndex(of: UInt8(ascii: "\n")) else {
            if connection.buffer.count > ControlRequest.maximumLength {
                finish(connection, "\(ControlAnswer.error) request too long\n")
            }
            return
        }
        let line = String(decoding: connection.buffer[..<newline], as: UTF8.self)
        let request: ControlRequest
        do {
            request = try ControlRequest(parsing: line)
        } catch {
            finish(connection, "\(ControlAnswer.error) \(error)\n")
            return
        }
        guard let target else { return }
        switch request {
        case let .status(json):
            finish(connection, "\(ControlAnswer.ok)\n" + (json ? target.statusJSON().encoded + "\n" : target.statusText()))
        case .metrics:
            finish(connection, "\(ControlAnswer.ok)\n" + target.metricsText())
        case .health:
            let health = target.health()
            finish(connection, "\(health.healthy ? ControlAnswer.ok : ControlAnswer.error) \(health.line)\n")
        case let .restart(wait):
            // Registered before asking: a restart that cannot even start ends within requestRestart.
            if wait { connection.waitingAfter = target.newestGeneration }
            target.requestRestart(reason: "control socket, pid \(connection.peerPID)")
            if !wait { finish(connection, "\(ControlAnswer.ok) restart requested\n") }
        case let .forget(sha256):
            let (done, message) = target.forget(sha256)
            finish(connection, "\(done ? ControlAnswer.ok : ControlAnswer.error) \(message)\n")
        case .forgetKeys:
            target.forgetKeys { [weak self, weak connection] done, message in
                guard let self, let connection, connections[connection.fd.rawValue] === connection else { return }
                finish(connection, "\(done ? ControlAnswer.ok : ControlAnswer.error) \(message)\n")
            }
        case .reexec:
            connection.waitingAfter = Int.max
            target.requestReexec(reason: "control socket, pid \(connection.peerPID)") { [weak self, weak connection] succeeded, message in
                guard let self, let connection, connections[connection.fd.rawValue] === connection else { return }
                finish(connection, succeeded ? "\(ControlAnswer.ok) \(message)\n" : "\(ControlAnswer.error) \(message)\n")
            }
        }
    }

    /// A restart ended: `candidate` is the generation it started.
    func restartFinished(candidate: Int, succeeded: Bool, message: String) {
        for connection in connections.values {
            guard let after = connection.waitingAfter, candidate > after else { continue }
            finish(connection, succeeded ? "\(ControlAnswer.ok) \(message)\n" : "\(ControlAnswer.error) \(message)\n")
        }
    }

    /// overseerd is stopping: nobody's restart will finish.
    func stopping() {
        for connection in connections.values where connection.waitingAfter != nil {
            finish(connection, "\(ControlAnswer.error) overseerd is stopping\n")
        }
    }

    private func finish(_ connection: Connection, _ answer: String) {
        StreamSocket.send(Array(answer.utf8), to: connection.fd)
        // Read what the client sent beyond its request: closing with unread
        // input would reset the connection and lose the answer.
        var sink = [UInt8](repeating: 0, count: 4096)
        while case .bytes? = try? Posix.read(connection.fd, into: &sink) {}
        drop(connection)
    }

    private func drop(_ connection: Connection) {
        loop.cancel(connection.deadline)
        if let watch = connection.watch { loop.unwatch(watch) }
        connections[connection.fd.rawValue] = nil
        Posix.close(connection.fd)
    }
}

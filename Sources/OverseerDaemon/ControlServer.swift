#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import COverseerShims
import OverseerCore
import OverseerProtocol
import OverseerSystem

/// The unix socket `overseerd status` and `overseerd restart` talk to. Only
/// root and overseerd's own user are served (SO_PEERCRED); each connection
/// sends one request line and gets one answer.
final class ControlServer {
    private final class Connection {
        let fd: Int32
        var token: UInt64 = 0
        var buffer: [UInt8] = []
        let peerPID: Int32
        init(fd: Int32, peerPID: Int32) {
            self.fd = fd
            self.peerPID = peerPID
        }
    }

    private unowned let host: Supervisor
    private let listener: Listener
    private var token: UInt64 = 0
    private var connections: [Int32: Connection] = [:]
    /// `restart --wait` callers, with the generation the restart they wait for must be newer than.
    private var waiters: [(connection: Connection, after: Int)] = []
    let path: String

    /// The listening fd (handed to a re-executed image).
    var fd: Int32 { listener.fd.rawValue }

    /// Takes over the socket an earlier image of overseerd listened on.
    init(adopting fd: Int32, path: String, host: Supervisor) throws {
        self.host = host
        self.path = path
        listener = Listener(fd: .init(rawValue: fd), name: try SocketName("control"), origin: .bound(.unix(path: path)),
                            localAddress: "unix:\(path)", kind: "unix", createdPath: path)
        try Posix.setCloseOnExec(fd)
        try Posix.setNonBlocking(fd)
        token = try host.watch(fd) { [unowned self] in acceptAll() }
    }

    init(path: String, host: Supervisor) throws {
        self.host = host
        self.path = path
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !directory.isEmpty { mkdir(directory, 0o755) }
        let spec = ListenerSpec(name: try SocketName("control"), address: .unix(path: path))
        listener = try ListenerBinder.bind(spec, backlog: 16, unixMode: 0o600)
        try Posix.setNonBlocking(listener.fd.rawValue)
        token = try host.watch(listener.fd.rawValue) { [unowned self] in acceptAll() }
    }

    func close() {
        for connection in connections.values { Glibc.close(connection.fd) }
        ListenerBinder.close([listener])
    }

    private func acceptAll() {
        while true {
            let fd = accept(listener.fd.rawValue, nil, nil)
            guard fd >= 0 else { return }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, O_NONBLOCK)
            var pid: pid_t = 0
            var uid: uid_t = 0
            guard overseer_peer_credentials(fd, &pid, &uid) == 0, uid == 0 || uid == geteuid() else {
                host.logger.warning("control socket: refused a connection from uid \(uid) (pid \(pid)): only root and uid \(geteuid()) may control overseerd")
                send("\(ControlAnswer.error) permission denied: only root and the daemon's own user may control overseerd\n", to: fd)
                Glibc.close(fd)
                continue
            }
            let connection = Connection(fd: fd, peerPID: pid)
            connections[fd] = connection
            do {
                connection.token = try host.watch(fd) { [unowned self, unowned connection] in read(connection) }
            } catch {
                finish(connection, "\(ControlAnswer.error) \(error)\n")
                continue
            }
            host.schedule(.controlTimeout(Int(fd)), after: .seconds(5)) { [unowned self, weak connection] in
                guard let connection, connections[connection.fd] === connection, !isWaiter(connection) else { return }
                finish(connection, "\(ControlAnswer.error) no request within 5s\n")
            }
        }
    }

    private func isWaiter(_ connection: Connection) -> Bool { waiters.contains { $0.connection === connection } }

    private func read(_ connection: Connection) {
        var chunk = [UInt8](repeating: 0, count: 512)
        let count = Glibc.read(connection.fd, &chunk, chunk.count)
        if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) {
            // The client went away (a `restart --wait` caller that gave up, say).
            drop(connection)
            return
        }
        guard count > 0 else { return }
        guard !isWaiter(connection) else { return }
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
        switch request {
        case let .status(json):
            finish(connection, "\(ControlAnswer.ok)\n" + (json ? host.statusJSON().encoded + "\n" : host.statusText()))
        case let .restart(wait):
            // Registered before asking: a restart that cannot even start ends within requestRestart.
            if wait { waiters.append((connection, host.newestGeneration)) }
            host.requestRestart(reason: "control socket, pid \(connection.peerPID)")
            if !wait { finish(connection, "\(ControlAnswer.ok) restart requested\n") }
        case .reexec:
            waiters.append((connection, Int.max))
            host.requestReexec(reason: "control socket, pid \(connection.peerPID)") { [weak self, weak connection] succeeded, message in
                guard let self, let connection, connections[connection.fd] === connection else { return }
                finish(connection, succeeded ? "\(ControlAnswer.ok) \(message)\n" : "\(ControlAnswer.error) \(message)\n")
            }
        }
    }

    /// A restart ended: `candidate` is the generation it started.
    func restartFinished(candidate: Int, succeeded: Bool, message: String) {
        let done = waiters.filter { candidate > $0.after }
        waiters.removeAll { candidate > $0.after }
        for (connection, _) in done {
            finish(connection, succeeded ? "\(ControlAnswer.ok) \(message)\n" : "\(ControlAnswer.error) \(message)\n")
        }
    }

    /// overseerd is stopping: nobody's restart will finish.
    func stopping() {
        for (connection, _) in waiters { finish(connection, "\(ControlAnswer.error) overseerd is stopping\n") }
        waiters = []
    }

    private func finish(_ connection: Connection, _ answer: String) {
        send(answer, to: connection.fd)
        // Read what the client sent beyond its request: closing with unread
        // input would reset the connection and lose the answer.
        var sink = [UInt8](repeating: 0, count: 4096)
        while Glibc.read(connection.fd, &sink, sink.count) > 0 {}
        drop(connection)
    }

    private func drop(_ connection: Connection) {
        waiters.removeAll { $0.connection === connection }
        host.cancel(.controlTimeout(Int(connection.fd)))
        if connection.token != 0 { host.unwatch(connection.fd, token: connection.token) }
        connections[connection.fd] = nil
        Glibc.close(connection.fd)
    }

    private func send(_ text: String, to fd: Int32) {
        let bytes = Array(text.utf8)
        var sent = 0
        // Answers are small; a client that does not read them loses them.
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { return }
            sent += count
        }
    }
}

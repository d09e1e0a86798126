import Glibc
import OverseerProtocol

/// Everything overseerd was told to do, checked as a whole.
public struct Configuration: Equatable, Sendable {
    /// The program, as given (a name to find on PATH, or a path).
    public var program: String
    /// Its arguments, without the program itself.
    public var arguments: [String]
    /// The listeners to bind, in fd order after any inherited ones.
    public var listeners: [ListenerSpec]
    /// listen(2) backlog for stream listeners.
    public var backlog: Int32 = 4096
    /// Permissions of unix socket files; nil leaves them to the umask.
    public var unixMode: UInt32?
    /// The signal that starts a graceful restart.
    public var restartSignal: Int32 = SIGUSR2
    /// The signal that makes overseerd re-execute its own binary; nil for none.
    public var reexecSignal: Int32?
    /// The signal an old generation gets when it is to stop.
    public var stopSignal: Int32 = SIGTERM
    /// How long a stopping child has before SIGKILL.
    public var stopTimeout: Duration = .seconds(30)
    /// How a new child says it is ready.
    public var readiness: ReadinessMode = .default
    /// How long a new child has to become ready.
    public var readyTimeout: Duration = .seconds(60)
    /// The signal a child gets when overseerd dies (PR_SET_PDEATHSIG); nil for none.
    public var parentDeathSignal: Int32? = SIGTERM
    /// Under a systemd watchdog (WATCHDOG_USEC): `auto` pings while a child
    /// lives; `relay` only while the serving child itself keeps pinging.
    public var watchdogRelay = false
    /// `--subreaper`: orphaned descendants come to overseerd (PR_SET_CHILD_SUBREAPER)
    /// and it reaps them, as it does anyway as PID 1 of a PID namespace.
    public var subreaper = false
    /// The control socket's path; nil for none.
    public var controlSocket: String?
    /// Where new binaries come from, if anywhere.
    public var upgrade: UpgradeSettings?
    /// `--state-directory` (or systemd's $STATE_DIRECTORY), with or without upgrades; nil: none.
    public var stateDirectory: String?

    /// Where the program's hash is kept across overseerd's restarts
    /// (`BinaryHashCache`): the state directory, else the control socket's
    /// directory (made private by overseerd for the default path); nil: in
    /// memory only.
    public var binaryHashCacheDirectory: String? {
        if let stateDirectory { return stateDirectory }
        guard let controlSocket, let slash = controlSocket.utf8.lastIndex(of: UInt8(ascii: "/")) else { return nil }
        let directory = String(controlSocket[..<slash])
        return directory.isEmpty ? "/" : directory
    }

    /// Where to serve `GET /metrics` (`--metrics-listen`); nil for nowhere.
    public var metricsListen: ListenAddress?
    /// What becomes of a generation's stdout and stderr (`--child-output`).
    public var childOutput: ChildOutputMode = .inherit
    /// How UDP listeners' datagrams reach the generations (`--udp-flows`).
    public var udpFlows: UDPFlowMode = .steered
    /// A steered UDP flow without a datagram for this long is forgotten (`--udp-flow-timeout`).
    public var udpFlowTimeout: Duration = .seconds(125)
    /// `--workers N` and its rolling restarts.
    public var workers = WorkerSettings()

    public init(program: String, arguments: [String] = [], listeners: [ListenerSpec] = []) {
        self.program = program
        self.arguments = arguments
        self.listeners = listeners
    }

    /// Checks what no single flag can check alone. Throws the first problem found.
    public func validate() throws(ConfigurationError) {
        if program.isEmpty {
            throw ConfigurationError("no program given: write overseerd [OPTIONS] -- PROGRAM [ARGS...]")
        }
        var seen: Set<SocketName> = []
        for listener in listeners where listener.isNamed {
            if !seen.insert(listener.name).inserted {
                throw ConfigurationError("listener name \"\(listener.name)\" is used twice: give each --listen its own NAME=")
            }
        }
        var addresses: [ListenAddress] = []
        for listener in listeners {
            if addresses.contains(listener.address), !listener.address.hasEphemeralPort {
                throw ConfigurationError("address \(listener.address) is given twice: each --listen needs its own address")
            }
            addresses.append(listener.address)
        }
        if !(1 ... 65535).contains(backlog) {
            throw ConfigurationError("bad backlog \(backlog): give a number from 1 to 65535")
        }
        if let unixMode, unixMode > 0o777 {
            throw ConfigurationError("bad unix socket mode \(String(unixMode, radix: 8)): give octal permissions such as 660")
        }
        for (flag, signal) in [("--restart-signal", restartSignal), ("--stop-signal", stopSignal)]
            where [SIGKILL, SIGSTOP, SIGCHLD].contains(signal) && !(flag == "--stop-signal" && signal == SIGKILL) {
            throw ConfigurationError("\(flag) cannot be \(SignalNumber.name(signal)): overseerd cannot use it for that")
        }
        if let reexecSignal, reexecSignal == restartSignal || SignalNumber.stopping.contains(reexecSignal)
            || [SIGKILL, SIGSTOP, SIGCHLD].contains(reexecSignal) {
            throw ConfigurationError("--reexec-signal cannot be \(SignalNumber.name(reexecSignal)): overseerd uses it otherwise")
        }
        if SignalNumber.stopping.contains(restartSignal) {
            throw ConfigurationError("--restart-signal cannot be \(SignalNumber.name(restartSignal)): it asks overseerd to stop")
        }
        if readyTimeout <= .zero {
            throw ConfigurationError("--ready-timeout must be longer than 0")
        }
        if let controlSocket {
            // `none` is the way to have no control socket; an empty path is a mistake
            // (an unset variable in a unit file, `--control-socket "$X"`).
            if controlSocket.isEmpty {
                throw ConfigurationError("--control-socket needs a path, or none for no control socket")
            }
            if controlSocket.utf8.count > ListenAddress.maximumUnixPathLength {
                throw ConfigurationError("control socket path \"\(controlSocket)\" is \(controlSocket.utf8.count) bytes long; a unix socket path can be at most \(ListenAddress.maximumUnixPathLength): give a shorter --control-socket PATH")
            }
            if controlSocket.utf8.contains(0) {
                throw ConfigurationError("control socket path \"\(controlSocket)\" contains a NUL byte")
            }
        }
        if case let .inet(_, _, transport)? = metricsListen, transport == .datagram {
            throw ConfigurationError("bad --metrics-listen \"\(metricsListen!)\": HTTP needs a stream socket: give HOST:PORT or unix:/path")
        }
        if let metricsListen, listeners.contains(where: { $0.address == metricsListen }), !metricsListen.hasEphemeralPort {
            throw ConfigurationError("--metrics-listen \(metricsListen) is also a --listen address: give the metrics endpoint its own")
        }
        try upgrade?.validate()
        if udpFlowTimeout <= .zero {
            throw ConfigurationError("--udp-flow-timeout must be longer than 0")
        }
        try workers.validate()
        if case let .delay(delay) = readiness, delay >= readyTimeout {
            throw ConfigurationError("--ready \(readiness) is not shorter than --ready-timeout \(readyTimeout.shortDescription): a child could never be ready in time")
        }
    }
}

extension ListenAddress {
    var hasEphemeralPort: Bool {
        if case let .inet(_, port, _) = self { return port == 0 }
        return false
    }
}

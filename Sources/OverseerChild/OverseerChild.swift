import Glibc
import OverseerProtocol

/// What a program started by overseerd (or by systemd socket activation) was
/// given: its sockets, its notify socket and the OVERSEER_* facts.
///
/// ```swift
/// OverseerChild.answerUpgradeCheckIfAsked()          // first: the upgrade check may be asking
/// let child = OverseerChild.current
/// let http = try child.socket(named: "http", orBind: "127.0.0.1:8080")
/// // … serve on http.fd …
/// child.ready()
/// ```
///
/// The library links Glibc only (no Foundation, no NIO, no libsystemd), so a
/// small tool can use it.
public struct OverseerChild: Sendable {
    /// The sockets passed to this process, in fd order (empty when none were).
    public let sockets: [InheritedSocket]
    /// Where sd_notify messages go, if anywhere: a path, or `@name` for the abstract namespace.
    public let notifySocket: String?
    /// 1 for the first child overseerd started, one more per restart; nil without overseerd.
    public let generation: Int?
    /// The program overseerd started.
    public let binaryPath: String?
    /// The SHA-256 of that program, as hex.
    public let binaryID: String?
    /// How often the service manager expects ``watchdog()`` pings (from
    /// WATCHDOG_USEC, when WATCHDOG_PID is unset or names this process); nil when it expects none.
    public let watchdogInterval: Duration?
    /// Why LISTEN_FDS, LISTEN_PID or LISTEN_FDNAMES were not used although they
    /// were meant for this process (for example `2 names for 1 fds`); nil when they were fine or absent.
    public let listenProblem: String?

    /// Whether overseerd started this process.
    public var isUnderOverseer: Bool { generation != nil }

    /// Whether sockets were passed to this process (by overseerd, systemd or another activator).
    public var hasInheritedSockets: Bool { !sockets.isEmpty }

    /// The environment of this process, read once, with LISTEN_FDS, LISTEN_PID,
    /// LISTEN_FDNAMES and LISTEN_PIDFDID then removed (as sd_listen_fds(3) does
    /// with `unset_environment`), so that programs this one starts do not think
    /// the sockets are theirs. NOTIFY_SOCKET and the OVERSEER_* variables stay.
    ///
    /// Read it before starting threads that could read the environment at the
    /// same time: `unsetenv` is not thread-safe.
    public static let current: OverseerChild = {
        let child = OverseerChild(environment: Self.processEnvironment(), ownPID: getpid())
        for name in [EnvironmentName.listenFDs, EnvironmentName.listenPID, EnvironmentName.listenFDNames,
                     EnvironmentName.listenPIDFDID] {
            unsetenv(name)
        }
        return child
    }()

    /// Reads `environment` as if this were process `ownPID`; changes nothing.
    ///
    /// - LISTEN_PID naming another process, or LISTEN_FDS unset: no sockets
    ///   (the variables were inherited, not meant for us).
    /// - LISTEN_FDNAMES unset: every socket is `unknown`; an empty entry is `unknown` too.
    /// - LISTEN_FDNAMES with a different number of names than LISTEN_FDS, or a
    ///   LISTEN_FDS or LISTEN_PID that is not a number: no sockets, and
    ///   ``listenProblem`` says why (sd_listen_fds_with_names(3) fails the same way).
    /// - Names are taken as they are, whatever characters they hold (only `:` separates them).
    public init(environment: [String: String], ownPID: Int32) {
        var problem: String?
        var sockets: [InheritedSocket] = []
        do {
            // ListenFDs checks LISTEN_PID and LISTEN_FDS; the names are split here,
            // leniently, so that a name systemd would not give still reaches the program.
            var withoutNames = environment
            withoutNames[EnvironmentName.listenFDNames] = nil
            if let fds = try ListenFDs.parse(environment: withoutNames, ownPID: ownPID), fds.count > 0 {
                var names = Array(repeating: SocketName.unnamed.rawValue, count: fds.count)
                if let text = environment[EnvironmentName.listenFDNames] {
                    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
                    if parts.count == fds.count {
                        names = parts.map { $0.isEmpty ? SocketName.unnamed.rawValue : String($0) }
                    } else {
                        problem = "\(EnvironmentName.listenFDNames)=\(text) has \(parts.count) names for \(fds.count) fds"
                    }
                }
                if problem == nil {
                    sockets = zip(fds.fds, names).map { InheritedSocket(fd: $0.0, name: $0.1) }
                }
            }
        } catch {
            problem = error.description
        }
        self.sockets = sockets
        listenProblem = problem
        notifySocket = environment[EnvironmentName.notifySocket].flatMap { $0.isEmpty ? nil : $0 }
        generation = environment[EnvironmentName.generation].flatMap { Int($0) }
        binaryPath = environment[EnvironmentName.binaryPath]
        binaryID = environment[EnvironmentName.binaryID]
        let watchdogPID = environment[EnvironmentName.watchdogPID].flatMap { Int32($0) }
        if let usec = environment[EnvironmentName.watchdogUSec].flatMap({ UInt64($0) }), usec > 0,
           watchdogPID == nil || watchdogPID == ownPID {
            watchdogInterval = .microseconds(Int64(clamping: usec))
        } else {
            watchdogInterval = nil
        }
    }

    /// The first socket named `name`.
    ///
    /// The error lists the names that were passed, so that a typo in
    /// `overseerd -l NAME=…` shows at once.
    public func socket(named name: String) throws(OverseerChildError) -> InheritedSocket {
        if let socket = sockets.first(where: { $0.name == name }) { return socket }
        throw OverseerChildError.noSocket(named: name, available: sockets.map(\.name), problem: listenProblem)
    }

    /// The socket at `index` (fd 3 + index).
    public func socket(at index: Int) throws(OverseerChildError) -> InheritedSocket {
        guard sockets.indices.contains(index) else {
            throw OverseerChildError.noSocket(named: "#\(index) (fd \(3 + index))", available: sockets.map(\.name),
                                              problem: listenProblem)
        }
        return sockets[index]
    }

    /// The socket named `name` if sockets were passed to this process, or else a
    /// socket this process binds itself on `address`: how a program keeps
    /// working when it is run without overseerd (on a laptop, in a test).
    ///
    /// `address` is written as for `overseerd --listen`: `HOST:PORT`,
    /// `[IPV6]:PORT`, `:PORT` (every interface), `unix:/path`, `unix:@name`.
    /// The fallback socket is a listening stream socket with SO_REUSEADDR (TCP),
    /// close-on-exec, in blocking mode, listening with `backlog`. A stale unix
    /// socket file that nobody accepts on is replaced.
    ///
    /// When sockets were passed but none is named `name`, this throws rather
    /// than binding: the name is then most likely wrong. Call it once per
    /// name: each fallback call binds a new socket.
    public func socket(named name: String, orBind address: String, backlog: Int32 = 4096)
        throws(OverseerChildError) -> InheritedSocket
    {
        if sockets.isEmpty && listenProblem == nil {
            let fd = try FallbackListener.bind(address, backlog: backlog)
            return InheritedSocket(fd: fd, name: name, isInherited: false)
        }
        return try socket(named: name)
    }

    private static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "="), result[String(text[..<equals])] == nil {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}

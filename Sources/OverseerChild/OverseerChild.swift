#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import OverseerProtocol

/// What a program started by overseerd (or by systemd socket activation) was
/// given: its sockets, its notify socket and the OVERSEER_* facts.
///
/// ```swift
/// OverseerChild.answerUpgradeCheckIfAsked()
/// let child = OverseerChild.current
/// let http = try child.socket(named: "http")
/// // … serve on http.fd …
/// child.ready()
/// ```
public struct OverseerChild: Sendable {
    /// The sockets passed to this process, in fd order (empty when none were).
    public let sockets: [InheritedSocket]
    /// Where sd_notify messages go, if anywhere.
    public let notifySocket: String?
    /// 1 for the first child overseerd started, one more per restart; nil without overseerd.
    public let generation: Int?
    /// The program overseerd started.
    public let binaryPath: String?
    /// The SHA-256 of that program, as hex.
    public let binaryID: String?

    /// Whether overseerd started this process.
    public var isUnderOverseer: Bool { generation != nil }

    /// The environment of this process, read once, with LISTEN_FDS, LISTEN_PID
    /// and LISTEN_FDNAMES then removed (as sd_listen_fds(1) does), so that
    /// programs this one starts do not think the sockets are theirs.
    public static let current: OverseerChild = {
        let child = OverseerChild(environment: Self.processEnvironment(), ownPID: getpid())
        for name in [EnvironmentName.listenFDs, EnvironmentName.listenPID, EnvironmentName.listenFDNames,
                     EnvironmentName.listenPIDFDID] {
            unsetenv(name)
        }
        return child
    }()

    /// Reads `environment` as if this were process `ownPID`. Malformed
    /// variables are treated as no sockets at all.
    public init(environment: [String: String], ownPID: Int32) {
        let fds = (try? ListenFDs.parse(environment: environment, ownPID: ownPID)) ?? nil
        sockets = fds.map { fds in
            zip(fds.fds, fds.names).map { InheritedSocket(fd: $0.0, name: $0.1.rawValue) }
        } ?? []
        notifySocket = environment[EnvironmentName.notifySocket].flatMap { $0.isEmpty ? nil : $0 }
        generation = environment[EnvironmentName.generation].flatMap(Int.init)
        binaryPath = environment[EnvironmentName.binaryPath]
        binaryID = environment[EnvironmentName.binaryID]
    }

    /// The first socket named `name`.
    public func socket(named name: String) throws(OverseerChildError) -> InheritedSocket {
        if let socket = sockets.first(where: { $0.name == name }) { return socket }
        throw OverseerChildError.noSocket(named: name, available: sockets.map(\.name))
    }

    /// The socket at `index` (fd 3 + index).
    public func socket(at index: Int) throws(OverseerChildError) -> InheritedSocket {
        guard sockets.indices.contains(index) else {
            throw OverseerChildError.noSocket(named: "#\(index)", available: sockets.map(\.name))
        }
        return sockets[index]
    }

    /// If this run is overseerd's check of a new binary (OVERSEER_CHECK_TOKEN is
    /// set), prints the token and exits 0. Call it first in `main`, before
    /// opening anything.
    public static func answerUpgradeCheckIfAsked() {
        guard let token = getenv(EnvironmentName.checkToken) else { return }
        let line = String(cString: token) + "\n"
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
        exit(0)
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

/// One inherited socket.
public struct InheritedSocket: Sendable, Equatable {
    /// Its fd in this process (3, 4, …).
    public let fd: Int32
    /// Its name from LISTEN_FDNAMES (`unknown` when it has none).
    public let name: String
}

/// A socket or message the program asked for and did not get.
public enum OverseerChildError: Error, Equatable, CustomStringConvertible {
    case noSocket(named: String, available: [String])
    case notifyFailed(reason: String)

    public var description: String {
        switch self {
        case let .noSocket(name, available):
            let list = available.isEmpty ? "none were passed" : "passed: " + available.joined(separator: ", ")
            return "no inherited socket named \(name) (\(list))"
        case let .notifyFailed(reason):
            return "cannot notify: \(reason)"
        }
    }
}

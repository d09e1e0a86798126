/// A request on overseerd's control socket: one line of text, answered with
/// text (or one line of JSON) and the connection closed.
public enum ControlRequest: Equatable, Sendable {
    case status(json: Bool)
    /// overseerd's metrics in the Prometheus text format.
    case metrics
    /// Whether a generation serves: `ok LINE` when one is ready, `error LINE` otherwise.
    case health
    /// Start a graceful restart; with `wait`, answer only once it has ended.
    case restart(wait: Bool)
    /// Re-execute overseerd's own (upgraded) binary, keeping sockets and child.
    case reexec
    /// Take a rejected binary (its SHA-256) off the rejected list.
    case forget(sha256: String)
    /// Go back to the command line's manifest keys, dropping those a manifest rotated to.
    case forgetKeys

    /// The longest request line taken.
    public static let maximumLength = 256

    public init(parsing line: String) throws(ProtocolError) {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        switch words.map(String.init) {
        case ["status"]: self = .status(json: false)
        case ["status", "--json"]: self = .status(json: true)
        case ["restart"]: self = .restart(wait: false)
        case ["restart", "--wait"]: self = .restart(wait: true)
        case ["reexec"]: self = .reexec
        case ["metrics"]: self = .metrics
        case ["health"]: self = .health
        case ["forget-keys"]: self = .forgetKeys
        case let words where words.count == 2 && words[0] == "forget":
            let hash = words[1].lowercased()
            guard SHA256Hex.isValid(hash) else {
                throw ProtocolError("forget needs a binary's SHA-256 (64 hex digits), as overseerd status and the log show it")
            }
            self = .forget(sha256: hash)
        default:
            throw ProtocolError("unknown request \"\(line.prefix(64))\": expected status [--json], health, metrics, restart [--wait], reexec, forget SHA256 or forget-keys")
        }
    }

    public var line: String {
        switch self {
        case let .status(json): json ? "status --json" : "status"
        case let .restart(wait): wait ? "restart --wait" : "restart"
        case .reexec: "reexec"
        case .metrics: "metrics"
        case .health: "health"
        case let .forget(sha256): "forget \(sha256)"
        case .forgetKeys: "forget-keys"
        }
    }
}

/// The first line of every answer on the control socket: `ok …` or `error …`.
public enum ControlAnswer {
    public static let ok = "ok"
    public static let error = "error"
}

/// How overseerd decides that a new child is ready to take over.
public enum ReadinessMode: Equatable, Sendable, CustomStringConvertible {
    /// The child sends `READY=1` to the NOTIFY_SOCKET overseerd gives it.
    case notify
    /// The child has stayed alive this long.
    case delay(Duration)

    /// `delay:1s`: for programs that cannot tell.
    public static let `default` = ReadinessMode.delay(.seconds(1))

    /// Parses `notify` or `delay:DURATION`.
    public init(parsing text: String) throws(ConfigurationError) {
        if text == "notify" { self = .notify; return }
        if text.hasPrefix("delay:") {
            self = .delay(try Duration(parsing: String(text.dropFirst(6))))
            return
        }
        if text == "delay" { self = .default; return }
        throw ConfigurationError("bad readiness \"\(text)\": write notify or delay:DURATION (e.g. delay:2s)")
    }

    public var description: String {
        switch self {
        case .notify: "notify"
        case let .delay(duration): "delay:\(duration.shortDescription)"
        }
    }
}

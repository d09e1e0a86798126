/// One line a pure machine asks overseerd to log: its level, its stable event
/// name, the text a person reads, and the facts a structured log carries as
/// fields (`--log-format json|journal`).
public struct LogLine: Equatable, Sendable {
    public var level: Supervision.LogLevel
    public var event: DaemonEvent
    /// The text; anything a child or a download supplied is already escaped in it.
    public var message: String
    /// The generation the line is about.
    public var generation: Int?
    /// The SHA-256 (hex) of the binary the line is about.
    public var binary: String?

    public init(_ level: Supervision.LogLevel, _ event: DaemonEvent, _ message: String,
                generation: Int? = nil, binary: String? = nil) {
        self.level = level
        self.event = event
        self.message = message
        self.generation = generation
        self.binary = binary
    }
}

import Logging
import OverseerCore

extension Logger {
    /// Logs a line a pure machine asked for, at the level it chose, with its
    /// event and fields; `pid` is the process of the line's generation, when known.
    func log(_ line: LogLine, pid: Int32? = nil) {
        log(Self.level(line.level), line.event, line.message, generation: line.generation, pid: pid, binary: line.binary)
    }

    /// Logs `message` as `event`, with the facts a structured log carries as fields.
    public func log(_ level: Logger.Level, _ event: DaemonEvent, _ message: String,
             generation: Int? = nil, pid: Int32? = nil, binary: String? = nil) {
        guard level >= logLevel else { return }
        var fields: Logger.Metadata = [LogFields.eventKey: .string(event.rawValue)]
        if let generation { fields[LogFields.generationKey] = .string(String(generation)) }
        if let pid { fields[LogFields.pidKey] = .string(String(pid)) }
        if let binary { fields[LogFields.binaryKey] = .string(binary) }
        log(level: level, "\(message)", metadata: fields)
    }

    static func level(_ level: Supervision.LogLevel) -> Logger.Level {
        switch level {
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        }
    }
}

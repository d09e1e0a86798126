import Logging
import OverseerCore
import OverseerProtocol
import OverseerSystem
import SystemPackage

/// overseerd's log, in the `LogFormat` chosen:
/// - text: `overseerd: message` on stderr, the level named for warnings, errors
///   and debug output, and under journald (JOURNAL_STREAM names our stderr) a
///   `<N>` syslog priority first so the journal keeps the level;
/// - json: one object per line on stderr (`time`, `level`, `logger`, `event`,
///   `message`, then `generation`, `pid`, `binary` when the line has them);
/// - journal: one entry per line on journald's native socket, with `MESSAGE`,
///   `PRIORITY`, `SYSLOG_IDENTIFIER` and `OVERSEERD_EVENT`, `OVERSEERD_GENERATION`,
///   `OVERSEERD_PID`, `OVERSEERD_BINARY`. When journald cannot be reached the
///   line goes to stderr as text instead, and one line says why.
/// No colours: the journal and terminals add their own. Each line is one write,
/// so lines from overseerd and its child never interleave mid-line.
public struct DaemonLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let format: LogFormat
    private let stderrIsJournal: Bool

    /// `stderrIsJournal`: whether JOURNAL_STREAM names our stderr (`stderrIsJournal(environment:)`).
    public init(label: String, level: Logger.Level, format: LogFormat, stderrIsJournal: Bool) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.stderrIsJournal = stderrIsJournal
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let message = event.message.description
        switch format {
        case .text:
            // The text format carries no fields: they are not even read.
            writeToStream(textLine(event.level, message))
        case .json:
            let fields = LogFields(event.metadata, handler: metadata)
            writeToStream(Self.jsonLine(time: Posix.utcTimestamp(), level: event.level, label: label,
                                        message: message, fields: fields))
        case .journal:
            let fields = LogFields(event.metadata, handler: metadata)
            if let error = JournalSocket.send(Self.journalFields(level: event.level, label: label, message: message, fields: fields)) {
                JournalFallback.report(error, label: label, stderrIsJournal: stderrIsJournal)
                writeToStream(textLine(event.level, message))
            }
        }
    }

    /// One line on stderr, never blocking (`LogStream`); after lines were
    /// dropped, the next line that gets through is followed by one saying how many.
    private func writeToStream(_ line: String) {
        let dropped = LogStream.standardError.write(line)
        guard dropped > 0 else { return }
        let message = Self.droppedMessage(dropped, total: LogStream.standardError.droppedLines)
        switch format {
        case .json:
            LogStream.standardError.write(Self.jsonLine(time: Posix.utcTimestamp(), level: .warning, label: label, message: message,
                                                        fields: LogFields(event: DaemonEvent.logLinesDropped.rawValue)))
        case .text, .journal:
            LogStream.standardError.write(textLine(.warning, message))
        }
    }

    static func droppedMessage(_ dropped: Int, total: Int) -> String {
        "\(dropped) log line\(dropped == 1 ? "" : "s") dropped: stderr was full (nobody reading it); log_lines_dropped \(total) in all"
    }

    func textLine(_ level: Logger.Level, _ message: String) -> String {
        var line = stderrIsJournal ? "<\(Self.priority(level))>" : ""
        line += label + ": "
        switch level {
        case .trace, .debug: line += "debug: "
        case .warning: line += "warning: "
        case .error, .critical: line += "error: "
        case .info, .notice: break
        }
        return line + message + "\n"
    }

    /// A `--log-format json` line.
    static func jsonLine(time: String, level: Logger.Level, label: String, message: String, fields: LogFields) -> String {
        var members: [(String, JSONText)] = [
            ("time", .string(time)), ("level", .string(level.rawValue)), ("logger", .string(label)),
        ]
        if let event = fields.event { members.append(("event", .string(event))) }
        members.append(("message", .string(message)))
        if let generation = fields.generation { members.append(("generation", .integer(Int64(generation)))) }
        if let pid = fields.pid { members.append(("pid", .integer(Int64(pid)))) }
        if let binary = fields.binary { members.append(("binary", .string(binary))) }
        return JSONText.object(members).encoded + "\n"
    }

    /// The fields of a `--log-format journal` entry.
    static func journalFields(level: Logger.Level, label: String, message: String, fields: LogFields) -> [String] {
        var entry = ["MESSAGE=\(message)", "PRIORITY=\(priority(level))", "SYSLOG_IDENTIFIER=\(label)"]
        if let event = fields.event { entry.append("OVERSEERD_EVENT=\(event)") }
        if let generation = fields.generation { entry.append("OVERSEERD_GENERATION=\(generation)") }
        if let pid = fields.pid { entry.append("OVERSEERD_PID=\(pid)") }
        if let binary = fields.binary { entry.append("OVERSEERD_BINARY=\(binary)") }
        return entry
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Whether stderr is the journal stream systemd announced in JOURNAL_STREAM (`DEV:INODE`).
    public static func stderrIsJournal(environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        guard let stderr = Posix.standardErrorIdentity() else { return false }
        return stderr.device == device && stderr.inode == inode
    }
}

/// The structured facts of one log line, from its metadata (see `Logger.log(_:_:_:generation:pid:binary:)`).
struct LogFields: Equatable {
    var event: String?
    var generation: Int?
    var pid: Int32?
    var binary: String?

    init(event: String? = nil, generation: Int? = nil, pid: Int32? = nil, binary: String? = nil) {
        self.event = event
        self.generation = generation
        self.pid = pid
        self.binary = binary
    }

    init(_ line: Logger.Metadata?, handler: Logger.Metadata) {
        func value(_ key: String) -> String? {
            if case let .string(text)? = line?[key] ?? handler[key] { return text }
            return nil
        }
        self.init(event: value(LogFields.eventKey), generation: value(LogFields.generationKey).flatMap { Int($0) },
                  pid: value(LogFields.pidKey).flatMap { Int32($0) }, binary: value(LogFields.binaryKey))
    }

    static let eventKey = "event"
    static let generationKey = "generation"
    static let pidKey = "pid"
    static let binaryKey = "binary"
}

/// Says once, on stderr, that journald could not be reached and why.
private enum JournalFallback {
    nonisolated(unsafe) static var reported = false

    static func report(_ error: Errno, label: String, stderrIsJournal: Bool) {
        guard !reported else { return }
        reported = true
        let prefix = stderrIsJournal ? "<4>" : ""
        LogStream.standardError.write("\(prefix)\(label): warning: cannot send to the journal (\(error)); logging to stderr as text instead\n")
    }
}

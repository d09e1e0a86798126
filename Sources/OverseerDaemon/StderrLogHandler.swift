import OverseerSystem
import Logging

/// One line per event on stderr: `overseerd: message`, with the level named
/// for warnings, errors and debug output. Under journald (JOURNAL_STREAM names
/// our stderr) each line starts with its syslog priority, `<4>`, so the journal
/// keeps the level. No colours, no timestamps: the journal and terminals add their own.
public struct StderrLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let prefix: String
    private let journal: Bool

    public init(label: String, level: Logger.Level, journal: Bool) {
        self.prefix = label
        self.logLevel = level
        self.journal = journal
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = journal ? "<\(Self.priority(event.level))>" : ""
        line += prefix + ": "
        switch event.level {
        case .trace, .debug: line += "debug: "
        case .warning: line += "warning: "
        case .error, .critical: line += "error: "
        case .info, .notice: break
        }
        line += event.message.description
        line += "\n"
        // One write per line, so lines from overseerd and its child never interleave mid-line.
        Posix.writeStandardError(line)
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

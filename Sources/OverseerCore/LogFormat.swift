/// How overseerd writes its log (`--log-format`).
public enum LogFormat: String, CaseIterable, Sendable {
    /// `overseerd: [LEVEL: ]message` lines on stderr (with a `<N>` priority prefix
    /// when stderr is the journal's stream).
    case text
    /// One JSON object per line on stderr: time, level, event, message and the event's fields.
    case json
    /// Entries sent to journald's native socket, with `OVERSEERD_*` fields.
    case journal

    /// `--log-format VALUE` as written.
    public init(parsing text: String) throws(ConfigurationError) {
        guard let format = LogFormat(rawValue: text.lowercased()) else {
            throw ConfigurationError("bad --log-format \"\(text)\": write text, json or journal")
        }
        self = format
    }

    /// The format used when none is given: the journal when systemd said stderr
    /// is its stream (JOURNAL_STREAM matches stderr), text otherwise.
    public static func automatic(stderrIsJournal: Bool) -> LogFormat {
        stderrIsJournal ? .journal : .text
    }
}

import OverseerCore
import OverseerProtocol
import OverseerSystem

/// Writes one line a generation printed (`--child-output capture`) in
/// overseerd's log format, tagged so that it cannot pass for overseerd's own:
/// - text: `PROGRAM[PID] gen G STREAM: TEXT` (with a `<6>` priority first when
///   stderr is the journal's stream);
/// - json: an object with `"logger":"child"`, `generation`, `pid`, `stream`,
///   `message`, and `cut` / `unterminated` when they hold;
/// - journal: `MESSAGE`, `PRIORITY=6`, `SYSLOG_IDENTIFIER=PROGRAM`,
///   `SYSLOG_PID`, `OVERSEERD_GENERATION`, `OVERSEERD_PID`, `OVERSEERD_STREAM`
///   (never `OVERSEERD_EVENT`, which only overseerd's own entries carry).
/// The text is escaped (control characters, invalid UTF-8, bidi controls) in
/// every format; in text and the journal's `MESSAGE` a piece cut from a longer
/// line ends with `…`, and one left without a newline at the end of the stream
/// with ` (no newline)`.
struct ChildLineWriter {
    let format: LogFormat
    let program: String
    let stderrIsJournal: Bool

    /// One line of generation `generation` (process `pid`) from `stream` (`stdout` or `stderr`).
    struct Line {
        var generation: Int
        var pid: Int32
        var stream: String
        var piece: OutputLineSplitter.Line
    }

    /// The program's name as a tag: the last part of its path.
    static func programName(_ path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return EscapedText.escape(name, limit: 64)
    }

    /// Writes `lines` (read together): one write for the text and json formats,
    /// one journal entry each.
    func write(_ lines: [Line]) {
        guard !lines.isEmpty else { return }
        switch format {
        case .text:
            LogStream.standardError.write(lines.map { Self.textLine($0, program: program, stderrIsJournal: stderrIsJournal) }.joined(),
                                          lines: lines.count)
        case .json:
            let time = Posix.utcTimestamp()
            LogStream.standardError.write(lines.map { Self.jsonLine($0, time: time) }.joined(), lines: lines.count)
        case .journal:
            for line in lines where JournalSocket.send(Self.journalFields(line, program: program)) != nil {
                LogStream.standardError.write(Self.textLine(line, program: program, stderrIsJournal: stderrIsJournal))
            }
        }
    }

    /// The piece escaped whole: `\xNN` is the longest escape of one byte.
    static func escaped(_ line: Line) -> String {
        EscapedText.escape(line.piece.bytes, limit: line.piece.bytes.count * 4 + 4)
    }

    static func text(of line: Line) -> String {
        var text = escaped(line)
        if line.piece.cut { text += "…" }
        if line.piece.unterminated { text += " (no newline)" }
        return text
    }

    static func textLine(_ line: Line, program: String, stderrIsJournal: Bool) -> String {
        (stderrIsJournal ? "<6>" : "") + "\(program)[\(line.pid)] gen \(line.generation) \(line.stream): \(text(of: line))\n"
    }

    /// Written out directly rather than through `JSONText.object`: this runs for every line a child writes.
    static func jsonLine(_ line: Line, time: String) -> String {
        var text = #"{"time":"# + JSONText.string(time).encoded + #","level":"info","logger":"child","generation":"#
        text += "\(line.generation),\"pid\":\(line.pid),\"stream\":" + JSONText.string(line.stream).encoded
        text += #","message":"# + JSONText.string(escaped(line)).encoded
        if line.piece.cut { text += #","cut":true"# }
        if line.piece.unterminated { text += #","unterminated":true"# }
        return text + "}\n"
    }

    static func journalFields(_ line: Line, program: String) -> [String] {
        var fields = ["MESSAGE=\(text(of: line))", "PRIORITY=6", "SYSLOG_IDENTIFIER=\(program)", "SYSLOG_PID=\(line.pid)",
                      "OVERSEERD_GENERATION=\(line.generation)", "OVERSEERD_PID=\(line.pid)", "OVERSEERD_STREAM=\(line.stream)"]
        if line.piece.cut { fields.append("OVERSEERD_CUT=1") }
        return fields
    }
}

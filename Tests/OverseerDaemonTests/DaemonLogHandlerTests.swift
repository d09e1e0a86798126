import Foundation
import Logging
@testable import OverseerDaemon
import OverseerCore
import Testing

/// The three log formats' output for one line, and the event list that alerts key on.
@Suite struct DaemonLogHandlerTests {
    let fields = LogFields(event: "restart_failed", generation: 2, pid: 4242, binary: String(repeating: "ab", count: 32))

    @Test func jsonLineIsOneObjectWithTheFieldsAfterTheMessage() throws {
        let line = DaemonLogHandler.jsonLine(time: "2026-11-29T06:30:00.000001Z", level: .error, label: "overseerd",
                                             message: "restart failed: \"x\"\\y", fields: fields)
        #expect(line == #"{"time":"2026-11-29T06:30:00.000001Z","level":"error","logger":"overseerd","event":"restart_failed","message":"restart failed: \"x\"\\y","generation":2,"pid":4242,"binary":""# + String(repeating: "ab", count: 32) + "\"}\n")
        #expect(line.filter { $0 == "\n" }.count == 1)
    }

    @Test func jsonLineEscapesWhatAChildCouldSmuggleIn() throws {
        // EscapedText has run before (no raw controls reach here); a newline that did must still not split the line.
        let line = DaemonLogHandler.jsonLine(time: "t", level: .info, label: "overseerd", message: "a\nb\u{1b}c\u{0}", fields: LogFields())
        #expect(line == #"{"time":"t","level":"info","logger":"overseerd","message":"a\nb\u001bc\u0000"}"# + "\n")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "a\nb\u{1b}c\u{0}")
    }

    @Test func journalEntryHasPriorityIdentifierAndTheOverseerdFields() {
        #expect(DaemonLogHandler.journalFields(level: .warning, label: "overseerd", message: "m", fields: fields) == [
            "MESSAGE=m", "PRIORITY=4", "SYSLOG_IDENTIFIER=overseerd", "OVERSEERD_EVENT=restart_failed",
            "OVERSEERD_GENERATION=2", "OVERSEERD_PID=4242", "OVERSEERD_BINARY=" + String(repeating: "ab", count: 32),
        ])
        #expect(DaemonLogHandler.journalFields(level: .debug, label: "overseerd", message: "m", fields: LogFields())
                == ["MESSAGE=m", "PRIORITY=7", "SYSLOG_IDENTIFIER=overseerd"])
    }

    @Test func textLineIsUnchangedByTheFields() {
        let text = DaemonLogHandler(label: "overseerd", level: .info, format: .text, stderrIsJournal: false)
        #expect(text.textLine(.warning, "killed 1 process(es)") == "overseerd: warning: killed 1 process(es)\n")
        #expect(text.textLine(.notice, "generation 2 is ready") == "overseerd: generation 2 is ready\n")
        let underJournal = DaemonLogHandler(label: "overseerd", level: .info, format: .text, stderrIsJournal: true)
        #expect(underJournal.textLine(.error, "restart failed") == "<3>overseerd: error: restart failed\n")
    }

    @Test func fieldsComeFromTheLinesMetadata() {
        let metadata: Logger.Metadata = ["event": "generation_ready", "generation": "3", "pid": "77", "binary": "cafe"]
        #expect(LogFields(metadata, handler: [:]) == LogFields(event: "generation_ready", generation: 3, pid: 77, binary: "cafe"))
        #expect(LogFields(nil, handler: [:]) == LogFields())
    }

    @Test func formatNamesAndTheDefault() throws {
        #expect(try LogFormat(parsing: "JSON") == .json)
        #expect(throws: ConfigurationError.self) { try LogFormat(parsing: "xml") }
        #expect(LogFormat.automatic(stderrIsJournal: true) == .journal)
        #expect(LogFormat.automatic(stderrIsJournal: false) == .text)
    }

    @Test func everyEventNameIsSnakeCaseUniqueAndDocumented() throws {
        let names = DaemonEvent.allCases.map(\.rawValue)
        #expect(Set(names).count == names.count)
        for name in names {
            #expect(name.allSatisfy { $0.isLowercase || $0 == "_" }, "\(name)")
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let operations = try String(contentsOfFile: root + "/docs/OPERATIONS.md", encoding: .utf8)
        for name in names {
            #expect(operations.contains("`\(name)`"), "event \(name) is missing from docs/OPERATIONS.md")
        }
    }

    /// A line without an event could only be found by its wording: every call names one.
    @Test func everyLogCallInTheDaemonNamesItsEvent() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        var offenders: [String] = []
        for directory in ["Sources/OverseerDaemon", "Sources/overseerd"] {
            let files = try FileManager.default.contentsOfDirectory(atPath: root + "/" + directory).filter { $0.hasSuffix(".swift") }
            for file in files {
                let text = try String(contentsOfFile: root + "/" + directory + "/" + file, encoding: .utf8)
                for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                    for level in ["trace", "debug", "info", "notice", "warning", "error", "critical"] where line.contains("logger.\(level)(") {
                        offenders.append("\(directory)/\(file):\(number + 1)")
                    }
                }
            }
        }
        #expect(offenders.isEmpty, "log through logger.log(LEVEL, EVENT, ...): \(offenders)")
    }
}

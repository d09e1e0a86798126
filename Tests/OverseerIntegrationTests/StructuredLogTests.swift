#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// `--log-format json` and `journal` with a real overseerd: every line a
/// parseable object with its event and fields, child text escaped inside it,
/// and a journal that cannot be reached falling back to text.
@Suite struct StructuredLogTests {
    typealias Setup = GracefulRestartTests.Setup

    /// overseerd's lines on stderr as JSON objects (the child's own lines are not JSON and are skipped).
    static func objects(_ run: RunningProcess) -> [[String: Any]] {
        run.lines(containing: "\"logger\":\"overseerd\"").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    static func waitForEvent(_ run: RunningProcess, _ event: String, generation: Int? = nil) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let found = objects(run).first(where: { $0["event"] as? String == event && (generation == nil || $0["generation"] as? Int == generation) }) {
                return found
            }
            usleep(20_000)
        }
        throw HarnessError("no \(event) event\(generation.map { " for generation \($0)" } ?? "") within 20 s; stderr:\n\(run.stderrText)")
    }

    @Test func jsonLinesCarryTheEventAndItsFields() throws {
        let setup = Setup()
        // A STATUS= with a terminal escape, a bell, quotes and a backslash: none may reach the log raw.
        setup.configure(["OTC_READY_AFTER_MS": "0", "OTC_STATUS": "\u{1b}[31mred \"quoted\" back\\slash\u{7}"])
        let run = try setup.start(["--ready", "notify", "--log-format", "json"])
        let binary = try sha256sum(Binaries.testChild)

        let started = try Self.waitForEvent(run, "generation_started", generation: 1)
        let pid = try #require(started["pid"] as? Int)
        #expect(started["binary"] as? String == binary)
        #expect(started["level"] as? String == "info")
        let ready = try Self.waitForEvent(run, "generation_ready", generation: 1)
        #expect(ready["pid"] as? Int == pid && ready["binary"] as? String == binary, "\(ready)")
        let status = try Self.waitForEvent(run, "child_status", generation: 1)
        let message = try #require(status["message"] as? String)
        #expect(!message.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }, "\(message.debugDescription)")
        #expect(message.contains("red"), "\(message)")

        // A restart that fails: restart_failed names the candidate and is an error.
        setup.configure(["OTC_EXIT_AFTER_MS": "20", "OTC_EXIT_CODE": "3"])
        run.signal(SIGUSR2)
        let failed = try Self.waitForEvent(run, "restart_failed", generation: 2)
        #expect(failed["level"] as? String == "error")
        #expect((failed["message"] as? String)?.hasPrefix("restart failed: generation 2 exited with status 3") == true, "\(failed)")
        #expect(failed["pid"] as? Int != nil && failed["pid"] as? Int != pid)
        // A restart that succeeds.
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        run.signal(SIGUSR2)
        let succeeded = try Self.waitForEvent(run, "restart_succeeded", generation: 3)
        #expect(succeeded["level"] as? String == "notice")

        run.signal(SIGTERM)
        _ = try run.waitForExit()
        // Every line overseerd wrote is one object with the same keys first, and a known event.
        let lines = run.stderrText.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(lines.count >= 10, "\(run.stderrText)")
        let known = Set(DaemonEvent.allCases.map(\.rawValue))
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            #expect(line.hasPrefix("{\"time\":\""), "\(line)")
            #expect(object["logger"] as? String == "overseerd")
            #expect(known.contains(object["event"] as? String ?? ""), "\(line)")
            let time = try #require(object["time"] as? String)
            #expect(time.count == 27 && time.hasSuffix("Z"), "\(time)")
        }
        #expect(!run.stderrText.contains("overseerd: "), "a text line among the JSON ones:\n\(run.stderrText)")
    }

    @Test func journalWithoutJournaldFallsBackToTextOnce() throws {
        // No journald here: the lines must not be lost (libsystemd would drop them without a word).
        guard access("/run/systemd/journal/socket", F_OK) != 0 else { return }
        let setup = Setup()
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        let run = try setup.start(["--ready", "notify", "--log-format", "journal"])
        try run.waitForLine(containing: "overseerd: generation 1 is ready")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
        let warnings = run.lines(containing: "journal")
        #expect(warnings == ["overseerd: warning: no journald at /run/systemd/journal/socket: logging to stderr as text instead"],
                "\(run.stderrText)")
    }

    @Test func badLogFormatIsAUsageError() throws {
        let run = try RunningProcess.overseerd(["--log-format", "xml", "--", "/bin/true"])
        #expect(try run.waitForExit() == .exited(64))
        #expect(run.stderrText == "overseerd: bad --log-format \"xml\": write text, json or journal — see overseerd --help\n")
    }
}

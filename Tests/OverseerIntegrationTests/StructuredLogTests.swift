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

    @Test func jsonLinesCarryTheEventAndItsFields() throws {
        let setup = Setup()
        // A STATUS= with a terminal escape, a bell, quotes and a backslash: none may reach the log raw.
        setup.configure(["OTC_READY_AFTER_MS": "0", "OTC_STATUS": "\u{1b}[31mred \"quoted\" back\\slash\u{7}"])
        let run = try setup.start(["--ready", "notify", "--log-format", "json"])
        let binary = try sha256sum(Binaries.testChild)

        let started = try run.waitForEvent(.generationStarted, generation: 1)
        let pid = try #require(started.pid)
        #expect(started.binary == binary)
        #expect(started.level == "info")
        let ready = try run.waitForEvent(.generationReady, generation: 1)
        #expect(ready.pid == pid && ready.binary == binary, "\(ready)")
        let status = try run.waitForEvent(.childStatus, generation: 1)
        let message = status.message
        #expect(!message.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }, "\(message.debugDescription)")
        #expect(message.contains("red"), "\(message)")

        // A restart that fails: restart_failed names the candidate and is an error.
        setup.configure(["OTC_EXIT_AFTER_MS": "20", "OTC_EXIT_CODE": "3"])
        run.signal(SIGUSR2)
        let failed = try run.waitForEvent(.restartFailed, generation: 2)
        #expect(failed.level == "error")
        #expect(failed.message.hasPrefix("restart failed: generation 2 exited with status 3"), "\(failed)")
        #expect(failed.pid != nil && failed.pid != pid)
        // A restart that succeeds.
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        run.signal(SIGUSR2)
        let succeeded = try run.waitForEvent(.restartSucceeded, generation: 3)
        #expect(succeeded.level == "notice")

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

    /// The harness's event helpers (OverseerTestSupport, RunningProcess+Events) on
    /// known lines: only overseerd's objects count, a line written in two pieces
    /// is read once whole, occurrences and marks pick the right one.
    @Test func eventHelpersReadOverseerdLinesOnly() throws {
        func line(_ generation: Int, _ message: String) -> String {
            #"{"time":"2026-01-01T00:00:00.000000Z","level":"info","logger":"overseerd","event":"generation_started","message":"\#(message)","generation":\#(generation),"pid":\#(100 + generation),"binary":"\#(String(repeating: "ab", count: 32))"}"#
        }
        let first = line(1, "one")
        let second = line(2, #"two \"quoted\""#)
        let half = second.count / 2
        // overseerd's line, a child's line, a child's line that looks like JSON, then
        // overseerd's second line in two writes.
        let script = [
            "printf '%s\\n' \(shellQuoted(first))",
            "echo 'child says hi'",
            #"echo '{"event":"generation_started"}'"#,
            "printf '%s' \(shellQuoted(String(second.prefix(half))))",
            "sleep 0.2",
            "printf '%s\\n' \(shellQuoted(String(second.dropFirst(half))))",
        ].joined(separator: "; ")
        let run = try RunningProcess(["/bin/sh", "-c", "exec >&2; " + script])
        let one = try run.waitForEvent(.generationStarted)
        #expect(one.generation == 1 && one.pid == 101 && one.message == "one" && one.index == 0, "\(one)")
        #expect(one.binary == String(repeating: "ab", count: 32) && one.level == "info")
        let two = try run.waitForEvent(.generationStarted, occurrence: 2, timeout: 5)
        #expect(two.generation == 2 && two.message == #"two "quoted""# && two.index == 1, "\(two)")
        #expect(try run.waitForEvent(.generationStarted, after: one.mark).index == 1)
        #expect(run.events(.generationStarted, generation: 2).count == 1)
        #expect(run.events().count == 2, "\(run.events())")
        _ = try run.waitForExit()
        #expect(run.logMark == two.mark)
        #expect(throws: HarnessError.self) { try run.waitForEvent(.generationStarted, after: two.mark, timeout: 1) }
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

extension StructuredLogTests {
    /// overseerd's events so far as JSON objects (for tests that read fields beyond `LoggedEvent`'s).
    static func objects(_ run: RunningProcess) -> [[String: Any]] {
        run.events().map(object)
    }

    /// Waits for `event` (of `generation`) through the shared helper; the line as a JSON object.
    static func waitForEvent(_ run: RunningProcess, _ event: String, generation: Int? = nil) throws -> [String: Any] {
        object(try run.waitForEvent(named: event, generation: generation))
    }

    private static func object(_ event: LoggedEvent) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(event.line.utf8))) as? [String: Any] ?? [:]
    }
}

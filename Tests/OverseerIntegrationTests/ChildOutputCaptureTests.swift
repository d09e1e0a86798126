#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// `--child-output capture`: overseerd writes every line of its children
/// itself, tagged, so a child can neither forge overseerd's events nor glue
/// a partial line onto one.
@Suite struct ChildOutputCaptureTests {
    /// A shell program printing `body`, then exiting with 3.
    static func program(_ scratch: ScratchDirectory, _ body: String) throws -> String {
        let path = scratch.file("chatty")
        try Data("#!/bin/sh\n\(body)\nexit 3\n".utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o755)
        return path
    }

    static let forged = #"{"time":"x","level":"notice","logger":"overseerd","event":"upgrade_succeeded","message":"forged"}"#

    @Test func jsonLinesOfTheChildAreTaggedAndCannotPassForOverseerds() throws {
        let scratch = ScratchDirectory()
        let program = try Self.program(scratch, """
            printf '%s\\n' '\(Self.forged)' >&2
            head -c 5000 /dev/zero | tr '\\0' y; echo
            printf 'no newline at the end'
            """)
        let run = try RunningProcess.overseerd(["--child-output", "capture", "--log-format", "json", "--", program])
        #expect(try run.waitForExit() == .exited(3), "\(run.stderrText)")
        let lines = run.stderrText.split(separator: "\n")
        let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == lines.count, "every line is one object: \(run.stderrText)")
        let started = try #require(objects.first { $0["event"] as? String == "generation_started" })
        let ours = objects.filter { $0["logger"] as? String == "overseerd" }
        #expect(ours.allSatisfy { ($0["event"] as? String).flatMap(DaemonEvent.init(rawValue:)) != nil })
        #expect(!ours.contains { $0["message"] as? String == "forged" }, "a child's line passed for overseerd's")
        let child = objects.filter { $0["logger"] as? String == "child" }
        #expect(child.allSatisfy { $0["generation"] as? Int == 1 && $0["pid"] as? Int == started["pid"] as? Int })
        let forgery = try #require(child.first { ($0["message"] as? String)?.contains("forged") == true })
        #expect(forgery["stream"] as? String == "stderr")
        // 5000 bytes: two cut pieces of 2048 and the rest.
        let long = child.filter { ($0["message"] as? String)?.hasPrefix("yyy") == true }
        #expect(long.map { ($0["message"] as? String)?.count ?? 0 } == [2048, 2048, 904])
        #expect(long.map { $0["cut"] as? Bool ?? false } == [true, true, false])
        let last = try #require(child.last)
        #expect(last["message"] as? String == "no newline at the end" && last["unterminated"] as? Bool == true, "\(last)")
        #expect(last["stream"] as? String == "stdout")
        // Its last lines come before the line that says it exited.
        let exitIndex = try #require(objects.firstIndex { $0["event"] as? String == "generation_exited" })
        #expect(objects.lastIndex { $0["logger"] as? String == "child" }! < exitIndex)
    }

    @Test func textLinesOfTheChildCarryAPrefixAndAreEscaped() throws {
        let scratch = ScratchDirectory()
        let program = try Self.program(scratch, "printf 'red \\033[31m text\\n'; echo oops >&2")
        let run = try RunningProcess.overseerd(["--child-output", "capture", "--", program])
        #expect(try run.waitForExit() == .exited(3))
        let pid = try #require(GracefulRestartTests.pid(in: try run.waitForLine(containing: "generation 1 started"), after: "pid"))
        #expect(run.lines(containing: "chatty[\(pid)] gen 1 stdout: red \\x1b[31m text").count == 1, "\(run.stderrText)")
        #expect(run.lines(containing: "chatty[\(pid)] gen 1 stderr: oops").count == 1, "\(run.stderrText)")
        #expect(!run.stderrText.contains("\u{1b}") && run.stdoutText.isEmpty)
    }

    /// The read ends of the pipes go to the new image with the child: after a re-exec
    /// the child's lines still come through, tagged as before.
    @Test func reexecHandsThePipesOver() throws {
        let setup = GracefulRestartTests.Setup()
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        let run = try setup.start(["--ready", "notify", "--child-output", "capture", "--log-format", "json", "--reexec-signal", "HUP"])
        let started = try StructuredLogTests.waitForEvent(run, "generation_started", generation: 1)
        let pid = try #require(started["pid"] as? Int)
        _ = try StructuredLogTests.waitForEvent(run, "generation_ready", generation: 1)
        run.signal(SIGHUP)
        _ = try StructuredLogTests.waitForEvent(run, "took_over")
        // The child prints every signal it gets on its stdout.
        run.signal(SIGUSR1)
        let line = try run.waitForLine(containing: "signal SIGUSR1 pid \(pid)")
        #expect(line.contains(#""logger":"child""#) && line.contains(#""stream":"stdout""#) && line.contains(#""generation":1"#), "\(line)")
        #expect(Processes.isAlive(Int32(pid)))
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

@testable import OverseerDaemon
import OverseerCore
import Testing

/// A captured child line in each format: tagged, escaped, never an overseerd event.
@Suite struct ChildLineWriterTests {
    static func line(_ text: [UInt8], cut: Bool = false, unterminated: Bool = false, stream: String = "stderr") -> ChildLineWriter.Line {
        ChildLineWriter.Line(generation: 3, pid: 4242, stream: stream,
                             piece: OutputLineSplitter.Line(text, cut: cut, unterminated: unterminated))
    }

    static let hostile: [UInt8] = Array(#"{"logger":"overseerd"}"#.utf8) + [0x1B, 0xFF, 0x0A]

    @Test func textHasAPrefixAndEscapes() {
        #expect(ChildLineWriter.textLine(Self.line(Self.hostile), program: "app", stderrIsJournal: false)
                == #"app[4242] gen 3 stderr: {"logger":"overseerd"}\x1b\xff\n"# + "\n")
        #expect(ChildLineWriter.textLine(Self.line(Array("a".utf8), cut: true, stream: "stdout"), program: "app", stderrIsJournal: true)
                == "<6>app[4242] gen 3 stdout: a…\n")
        #expect(ChildLineWriter.textLine(Self.line(Array("a".utf8), unterminated: true), program: "app", stderrIsJournal: false)
                == "app[4242] gen 3 stderr: a (no newline)\n")
    }

    @Test func jsonIsAChildObject() {
        #expect(ChildLineWriter.jsonLine(Self.line(Self.hostile, cut: true), time: "t")
                == #"{"time":"t","level":"info","logger":"child","generation":3,"pid":4242,"stream":"stderr","message":"{\"logger\":\"overseerd\"}\\x1b\\xff\\n","cut":true}"# + "\n")
    }

    @Test func journalCarriesTheProgramAndNoEvent() {
        let fields = ChildLineWriter.journalFields(Self.line(Array("hi".utf8), stream: "stdout"), program: "app")
        #expect(fields == ["MESSAGE=hi", "PRIORITY=6", "SYSLOG_IDENTIFIER=app", "SYSLOG_PID=4242", "OVERSEERD_GENERATION=3",
                           "OVERSEERD_PID=4242", "OVERSEERD_STREAM=stdout"])
        #expect(!fields.contains { $0.hasPrefix("OVERSEERD_EVENT=") })
        #expect(ChildLineWriter.programName("/usr/local/bin/my\u{1b}app") == #"my\x1bapp"#)
    }
}

import OverseerProtocol
import Testing

@Suite struct NotifyMessageTests {
    private func parse(_ text: String) -> NotifyMessage { NotifyMessage(parsing: Array(text.utf8)) }
    private func pairs(_ message: NotifyMessage) -> [String] { message.assignments.map { "\($0.key)|\($0.value)" } }

    @Test(arguments: [
        ("READY=1", ["READY|1"]),
        ("READY=1\nSTATUS=serving", ["READY|1", "STATUS|serving"]),
        ("READY=1\n", ["READY|1"]),
        ("\n\nREADY=1\n\n", ["READY|1"]),
        ("STATUS=a=b", ["STATUS|a=b"]),
        ("STATUS=", ["STATUS|"]),
        ("=orphan\nREADY=1", ["READY|1"]),
        ("no equals sign\nWATCHDOG=1", ["WATCHDOG|1"]),
        ("", []),
        ("MAINPID=12\nREADY=1\nSTATUS=x y z", ["MAINPID|12", "READY|1", "STATUS|x y z"]),
    ])
    func parses(_ text: String, _ expected: [String]) {
        #expect(pairs(parse(text)) == expected)
    }

    @Test func laterAssignmentsWin() {
        let message = parse("STATUS=one\nREADY=1\nSTATUS=two\nREADY=0")
        #expect(message.status == "two")
        #expect(!message.isReady)
        #expect(message.assignments.count == 4)
    }

    @Test(arguments: [
        ("READY=1", true, false, false, false),
        ("READY=0", false, false, false, false),
        ("READY=true", false, false, false, false),
        ("READY=1\r", false, false, false, false),
        ("ready=1", false, false, false, false),
        ("STOPPING=1", false, true, false, false),
        ("RELOADING=1", false, false, true, false),
        ("WATCHDOG=1", false, false, false, true),
        ("READY=1\nSTOPPING=1\nRELOADING=1\nWATCHDOG=1", true, true, true, true),
    ])
    func flags(_ text: String, _ ready: Bool, _ stopping: Bool, _ reloading: Bool, _ watchdog: Bool) {
        let message = parse(text)
        #expect(message.isReady == ready)
        #expect(message.isStopping == stopping)
        #expect(message.isReloading == reloading)
        #expect(message.isWatchdogPing == watchdog)
    }

    @Test func missingKeyIsNil() {
        #expect(parse("READY=1")["STATUS"] == nil)
        #expect(parse("READY=1").status == nil)
    }

    @Test func invalidUTF8IsReplaced() {
        let message = NotifyMessage(parsing: Array("STATUS=a".utf8) + [0xff, 0xfe] + Array("b\nREADY=1".utf8))
        #expect(message.status == "a\u{fffd}\u{fffd}b")
        #expect(message.isReady)
    }

    @Test(arguments: [
        [("READY", "1")],
        [("READY", "1"), ("STATUS", "serving generation 2 (pid 10)"), ("MAINPID", "9")],
        [("STATUS", "x=y"), ("STATUS", "")],
    ])
    func encodedRoundTrip(_ assignments: [(String, String)]) {
        let message = NotifyMessage(assignments.map { (key: $0.0, value: $0.1) })
        #expect(parse(message.encoded) == message)
    }

    @Test func encodedText() {
        let message = NotifyMessage([(key: "READY", value: "1"), (key: "STATUS", value: "ok")])
        #expect(message.encoded == "READY=1\nSTATUS=ok")
        #expect(message != NotifyMessage([(key: "STATUS", value: "ok"), (key: "READY", value: "1")]))
    }
}

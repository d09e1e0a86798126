import OverseerCore
import Testing

@Suite struct ReadinessModeTests {
    @Test(arguments: [
        ("notify", ReadinessMode.notify, "notify"),
        ("delay", .delay(.seconds(1)), "delay:1s"),
        ("delay:2s", .delay(.seconds(2)), "delay:2s"),
        ("delay:250ms", .delay(.milliseconds(250)), "delay:250ms"),
        ("delay:0", .delay(.zero), "delay:0s"),
    ])
    func parses(_ text: String, _ mode: ReadinessMode, _ description: String) throws {
        let parsed = try ReadinessMode(parsing: text)
        #expect(parsed == mode)
        #expect(parsed.description == description)
        #expect(try ReadinessMode(parsing: parsed.description) == parsed)
    }

    @Test(arguments: [
        ("Notify", "bad readiness \"Notify\": write notify or delay:DURATION (e.g. delay:2s)"),
        ("", "bad readiness \"\": write notify or delay:DURATION"),
        ("delay:", "bad duration \"\": write it with a unit"),
        ("delay:10", "bad duration \"10\": write it with a unit"),
        ("delay=1s", "bad readiness \"delay=1s\""),
    ])
    func rejects(_ text: String, _ message: String) {
        #expect {
            _ = try ReadinessMode(parsing: text)
        } throws: { error in
            (error as? ConfigurationError)?.description.hasPrefix(message) == true
        }
    }

    @Test func defaultIsOneSecondDelay() {
        #expect(ReadinessMode.default == .delay(.seconds(1)))
    }
}

import OverseerCore
import Testing

@Suite struct DurationParsingTests {
    @Test(arguments: [
        ("0", Duration.zero),
        ("0s", .zero),
        ("0ms", .zero),
        ("500ms", .milliseconds(500)),
        ("10s", .seconds(10)),
        ("5m", .seconds(300)),
        ("5min", .seconds(300)),
        ("2h", .seconds(7200)),
        ("1m30s", .seconds(90)),
        ("1h30m", .seconds(5400)),
        ("1h1m1s1ms1us", .seconds(3661) + .milliseconds(1) + .microseconds(1)),
        ("1.5s", .milliseconds(1500)),
        ("0.25s", .milliseconds(250)),
        (".5s", .milliseconds(500)),
        ("2.5ms", .microseconds(2500)),
        ("1.5us", .nanoseconds(1500)),
        ("250us", .microseconds(250)),
        ("250µs", .microseconds(250)),
        ("1s1s", .seconds(2)),
    ])
    func parses(_ text: String, _ expected: Duration) throws {
        #expect(try Duration(parsing: text) == expected)
    }

    @Test(arguments: [
        "", "10", "5x", "s", "ms", "-", "1 s", " 1s", "1s ", "1.2.3s", ".s", "1e3s", "1S", "1sec", "1d", "1m30",
        "10s5", "1hh", "+1s", "١s",
    ])
    func rejects(_ text: String) {
        #expect {
            _ = try Duration(parsing: text)
        } throws: { error in
            (error as? ConfigurationError)?.description
                == "bad duration \"\(text)\": write it with a unit, e.g. 500ms, 10s, 5m or 1h30m"
        }
    }

    /// A mistake that is not about units gets its own reason.
    @Test(arguments: [
        ("-1s", "bad duration \"-1s\": a duration cannot be negative; write 0 or more, e.g. 5s"),
        ("-5s", "bad duration \"-5s\": a duration cannot be negative; write 0 or more, e.g. 5s"),
        ("-0", "bad duration \"-0\": a duration cannot be negative; write 0 or more, e.g. 5s"),
        ("-x", "bad duration \"-x\": a duration cannot be negative; write 0 or more, e.g. 5s"),
        ("99999999999h", "bad duration \"99999999999h\": too large; write at most 277777h (about 31 years)"),
        ("999999999999h", "bad duration \"999999999999h\": too large; write at most 277777h (about 31 years)"),
        ("277778h", "bad duration \"277778h\": too large; write at most 277777h (about 31 years)"),
        ("200000h200000h", "bad duration \"200000h200000h\": too large; write at most 277777h (about 31 years)"),
        ("1" + String(repeating: "0", count: 400) + "s", "bad duration \"1\(String(repeating: "0", count: 400))s\": too large; write at most 277777h (about 31 years)"),
    ])
    func rejectsWithItsReason(_ text: String, _ message: String) {
        #expect {
            _ = try Duration(parsing: text)
        } throws: { error in
            (error as? ConfigurationError)?.description == message
        }
    }

    @Test func largestParses() throws {
        #expect(try Duration(parsing: "277777h") == .seconds(277_777 * 3600))
        #expect(try Duration(parsing: "1000000000s") == Duration.maximumParsed)
        #expect(throws: ConfigurationError.self) { try Duration(parsing: "1000000000.001s") }
    }

    @Test(arguments: [
        (Duration.zero, "0s"),
        (.seconds(10), "10s"),
        (.seconds(60), "1m"),
        (.seconds(90), "90s"),
        (.seconds(300), "5m"),
        (.seconds(3600), "1h"),
        (.seconds(5400), "90m"),
        (.milliseconds(250), "250ms"),
        (.milliseconds(1500), "1.5s"),
        (.milliseconds(12_300), "12.3s"),
        (.milliseconds(1250), "1250ms"),
        (.microseconds(250), "250us"),
        (.microseconds(1001), "1001us"),
        (.nanoseconds(1500), "1.5us"),
        (.nanoseconds(1), "0.001us"),
    ])
    func shortDescription(_ duration: Duration, _ text: String) throws {
        #expect(duration.shortDescription == text)
        #expect(try Duration(parsing: text) == duration)
    }

    @Test(arguments: ["500ms", "10s", "5m", "1m30s", "1.5s", "1h", "36h", "1.0000005s", "2.25s", "0.1us", "3.0001ms", "1h0m0.5s"])
    func roundTrip(_ text: String) throws {
        let duration = try Duration(parsing: text)
        #expect(try Duration(parsing: duration.shortDescription) == duration)
    }

    @Test func totalNanoseconds() {
        #expect(Duration.seconds(2).totalNanoseconds == 2_000_000_000)
        #expect(Duration.microseconds(3).totalNanoseconds == 3_000)
        #expect(Duration.seconds(Int64.max).totalNanoseconds == .max)
        #expect(Duration.seconds(Int64.min).totalNanoseconds == .min)
    }
}

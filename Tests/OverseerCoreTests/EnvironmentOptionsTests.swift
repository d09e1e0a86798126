import OverseerCore
import Testing

@Suite struct EnvironmentOptionsTests {
    static let options: [(name: String, kind: EnvironmentOptions.Kind)] = [
        ("listen", .repeated), ("ready-timeout", .single), ("stop-signal", .single), ("verbose", .flag),
    ]

    private func apply(_ arguments: [String], _ environment: [String: String]) throws -> [String] {
        try EnvironmentOptions.apply(to: arguments, environment: environment, options: Self.options)
    }

    @Test(arguments: [
        ("ready-timeout", "OVERSEERD_READY_TIMEOUT"), ("listen", "OVERSEERD_LISTEN"),
        ("parent-death-signal", "OVERSEERD_PARENT_DEATH_SIGNAL"), ("log-level", "OVERSEERD_LOG_LEVEL"),
    ])
    func variableName(_ option: String, _ variable: String) {
        #expect(EnvironmentOptions.variableName(for: option) == variable)
    }

    @Test(arguments: [
        // Nothing set: unchanged.
        ([String: String](), ["--", "app"], ["--", "app"]),
        (["OVERSEERD_READY_TIMEOUT": "5s"], ["--", "app"], ["--ready-timeout=5s", "--", "app"]),
        (["OVERSEERD_READY_TIMEOUT": "5s"], [], ["--ready-timeout=5s"]),
        (["OVERSEERD_READY_TIMEOUT": ""], ["--", "app"], ["--ready-timeout=", "--", "app"]),
        // The command line wins, in either spelling.
        (["OVERSEERD_READY_TIMEOUT": "5s"], ["--ready-timeout", "9s", "--", "app"], ["--ready-timeout", "9s", "--", "app"]),
        (["OVERSEERD_READY_TIMEOUT": "5s"], ["--ready-timeout=9s", "--", "app"], ["--ready-timeout=9s", "--", "app"]),
        // A similar longer option does not count as given.
        (["OVERSEERD_READY_TIMEOUT": "5s"], ["--ready-timeout-x=1", "--", "app"], ["--ready-timeout=5s", "--ready-timeout-x=1", "--", "app"]),
        // What follows -- is the program's, not ours.
        (["OVERSEERD_READY_TIMEOUT": "5s"], ["--", "app", "--ready-timeout=1s"], ["--ready-timeout=5s", "--", "app", "--ready-timeout=1s"]),
        // Repeated values split on whitespace, in order.
        (["OVERSEERD_LISTEN": "web=:80  admin=:81\n\tunix:/s"], ["--", "app"],
         ["--listen=web=:80", "--listen=admin=:81", "--listen=unix:/s", "--", "app"]),
        (["OVERSEERD_LISTEN": "   "], ["--", "app"], ["--", "app"]),
        (["OVERSEERD_LISTEN": ":80"], ["--listen", ":81", "--", "app"], ["--listen", ":81", "--", "app"]),
        // Options come out in the table's order.
        (["OVERSEERD_STOP_SIGNAL": "INT", "OVERSEERD_LISTEN": ":80"], ["--", "a"], ["--listen=:80", "--stop-signal=INT", "--", "a"]),
        // Only OVERSEERD_ variables count.
        (["READY_TIMEOUT": "5s", "overseerd_ready_timeout": "5s"], ["--", "a"], ["--", "a"]),
    ])
    func apply(_ environment: [String: String], _ arguments: [String], _ expected: [String]) throws {
        #expect(try apply(arguments, environment) == expected)
    }

    @Test(arguments: ["1", "true", "yes", "on", "TRUE", "Yes"])
    func flagOn(_ value: String) throws {
        #expect(try apply(["--", "a"], ["OVERSEERD_VERBOSE": value]) == ["--verbose", "--", "a"])
    }

    @Test(arguments: ["0", "false", "no", "off", "", "OFF"])
    func flagOff(_ value: String) throws {
        #expect(try apply(["--", "a"], ["OVERSEERD_VERBOSE": value]) == ["--", "a"])
    }

    @Test(arguments: ["2", "maybe", "y"])
    func flagBad(_ value: String) {
        #expect {
            _ = try apply(["--", "a"], ["OVERSEERD_VERBOSE": value])
        } throws: { error in
            (error as? ConfigurationError)?.description == "bad OVERSEERD_VERBOSE=\(value): write 1 or 0"
        }
    }

    @Test(arguments: [
        (["-l", ":81", "--", "a"], ["-l", ":81", "--", "a"]),
        (["-l=:81", "--", "a"], ["-l=:81", "--", "a"]),
        (["-x", "--", "a"], ["--listen=:80", "-x", "--", "a"]),
        (["--", "a", "-l", ":81"], ["--listen=:80", "--", "a", "-l", ":81"]),
    ])
    func aliasCountsAsGiven(_ arguments: [String], _ expected: [String]) throws {
        let result = try EnvironmentOptions.apply(
            to: arguments, environment: ["OVERSEERD_LISTEN": ":80"], options: Self.options, aliases: ["listen": "-l"])
        #expect(result == expected)
    }

    /// A misspelt variable used to be ignored without a word.
    @Test(arguments: [
        // (variable, suggestion)
        ("OVERSEERD_STOP_TIMOUT", "OVERSEERD_STOP_TIMEOUT"),
        ("OVERSEERD_STOP_SIGNLA", "OVERSEERD_STOP_SIGNAL"),
        ("OVERSEERD_READY_TIMOUT", "OVERSEERD_READY_TIMEOUT"),
        ("OVERSEERD_READY_TIMEOUTS", "OVERSEERD_READY_TIMEOUT"),
        ("OVERSEERD_LISTNE", "OVERSEERD_LISTEN"),
        ("OVERSEERD_LISTENS", "OVERSEERD_LISTEN"),
        ("OVERSEERD_VERBSOE", "OVERSEERD_VERBOSE"),
        ("OVERSEERD_STATE_FDS", "OVERSEERD_STATE_FD"),
        ("OVERSEERD_WORKERS", nil),
        ("OVERSEERD_", nil),
        ("OVERSEERD_\u{1b}[31m", nil),
    ])
    func unknownVariableIsNamedWithTheNearestKnownOne(_ variable: String, _ suggestion: String?) {
        let unknown = EnvironmentOptions.unknownVariables(
            in: [variable: "5s", "OVERSEERD_LISTEN": ":80", "OVERSEERD_STATE_FD": "7", "PATH": "/bin", "OVERSEER_GENERATION": "1"],
            options: Self.options + [("stop-timeout", .single)], others: ["OVERSEERD_STATE_FD"])
        #expect(unknown == [EnvironmentOptions.UnknownVariable(name: variable, suggestion: suggestion)])
    }

    @Test func knownAndOtherVariablesAreNotReported() {
        let environment = ["OVERSEERD_LISTEN": ":80", "OVERSEERD_READY_TIMEOUT": "1s", "OVERSEERD_VERBOSE": "1",
                           "OVERSEERD_STATE_FD": "7", "overseerd_listen": ":81", "LISTEN_FDS": "1"]
        #expect(EnvironmentOptions.unknownVariables(in: environment, options: Self.options, others: ["OVERSEERD_STATE_FD"]).isEmpty)
    }

    @Test func unknownVariablesComeSortedOncePerName() {
        let unknown = EnvironmentOptions.unknownVariables(
            in: ["OVERSEERD_B": "", "OVERSEERD_A": "", "OVERSEERD_C": ""], options: Self.options)
        #expect(unknown.map(\.name) == ["OVERSEERD_A", "OVERSEERD_B", "OVERSEERD_C"])
    }
}

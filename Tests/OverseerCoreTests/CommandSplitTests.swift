import OverseerCore
import Testing

@Suite struct CommandSplitTests {
    static let takingValue: Set<String> = ["--listen", "-l", "--ready"]

    @Test(arguments: [
        ([], [], []),
        (["--", "app", "-x"], [], ["app", "-x"]),
        (["--listen", ":80", "--", "app"], ["--listen", ":80"], ["app"]),
        (["--listen", ":80", "app", "-x", "--listen", ":81"], ["--listen", ":80"], ["app", "-x", "--listen", ":81"]),
        (["-l", ":80", "--ready=notify", "app"], ["-l", ":80", "--ready=notify"], ["app"]),
        (["--listen=:80", "app"], ["--listen=:80"], ["app"]),
        (["--verbose", "app"], ["--verbose"], ["app"]),
        (["--listen", ":80"], ["--listen", ":80"], []),
        (["--listen"], ["--listen"], []),
        (["app"], [], ["app"]),
        (["-", "x"], [], ["-", "x"]),
        (["--", "--"], [], ["--"]),
        (["--", "app", "--", "x"], [], ["app", "--", "x"]),
        // The program's own `--` is not overseerd's separator.
        (["--listen", ":80", "grep", "--", "-v"], ["--listen", ":80"], ["grep", "--", "-v"]),
        (["app", "--"], [], ["app", "--"]),
        // `--` where a value is expected is still the separator, not the value.
        (["--listen", "--", "app"], ["--listen"], ["app"]),
        // A value that looks like an option is still a value.
        (["--ready", "-x", "app"], ["--ready", "-x"], ["app"]),
    ])
    func split(_ arguments: [String], _ options: [String], _ command: [String]) {
        let result = CommandSplit.split(arguments, optionsTakingValue: Self.takingValue)
        #expect(result.options == options)
        #expect(result.command == command)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// Mistakes on the command line or in OVERSEERD_* that used to get the wrong
/// message, a cut one, the wrong exit code, or none at all: the real binary, one line each.
@Suite struct CommandLineMessageTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let arguments: [String]
        var environment: [String: String] = [:]
        let line: String
        var testDescription: String { "\(arguments) \(environment.keys.sorted())" }
    }

    static let usageErrors: [Case] = [
        // Was "missing value for '--stop-timeout <duration>'": -5s looked like an option.
        Case(arguments: ["--stop-timeout", "-5s", "--", "true"],
             line: "bad --stop-timeout: bad duration \"-5s\": a duration cannot be negative; write 0 or more, e.g. 5s"),
        Case(arguments: ["--stop-timeout=-5s", "--", "true"],
             line: "bad --stop-timeout: bad duration \"-5s\": a duration cannot be negative; write 0 or more, e.g. 5s"),
        Case(arguments: ["-l", "-x", "--", "true"],
             line: "bad listen address \"-x\": missing :PORT (write HOST:PORT, :PORT or unix:/path)"),
        // Was "write it with a unit".
        Case(arguments: ["--ready-timeout", "99999999999h", "--", "true"],
             line: "bad --ready-timeout: bad duration \"99999999999h\": too large; write at most 277777h (about 31 years)"),
        // Was a DNS lookup of "b=127.0.0.1" and exit 71.
        Case(arguments: ["--listen", "a=b=127.0.0.1:1", "--", "true"],
             line: "bad listener \"a=b=127.0.0.1:1\": give one NAME= before the address, e.g. web=127.0.0.1:8080 (neither a name nor a host contains '=')"),
        // Was two lines: the message, cut at the newline, then its rest.
        Case(arguments: ["--", "true"], environment: ["OVERSEERD_STOP_TIMEOUT": "5s\nfoo"],
             line: #"bad --stop-timeout: bad duration "5s\nfoo": write it with a unit, e.g. 500ms, 10s, 5m or 1h30m"#),
        // Was "the value '5", the rest lost (the backlog was parsed by ArgumentParser).
        // Each duration names its option (was "bad duration" alone).
        Case(arguments: ["--workers", "2", "--worker-crash-window", "abc", "--", "true"],
             line: "bad --worker-crash-window: bad duration \"abc\": write it with a unit, e.g. 500ms, 10s, 5m or 1h30m"),
        Case(arguments: ["--workers", "2", "--worker-restart-max-delay", "5x", "--", "true"],
             line: "bad --worker-restart-max-delay: bad duration \"5x\": write it with a unit, e.g. 500ms, 10s, 5m or 1h30m"),
        // Was ignored without --fetch: the child ran.
        Case(arguments: ["--probation", "qq", "--", "true"],
             line: "bad --probation: bad duration \"qq\": write it with a unit, e.g. 500ms, 10s, 5m or 1h30m"),
        Case(arguments: ["--", "true"], environment: ["OVERSEERD_BACKLOG": "5\nfoo"],
             line: #"bad backlog "5\nfoo": give a number from 1 to 65535"#),
        Case(arguments: ["--", "true"], environment: ["OVERSEERD_READY": "\u{1b}]0;owned\u{07}"],
             line: #"bad readiness "\x1b]0;owned\x07": write notify or delay:DURATION (e.g. delay:2s)"#),
        // Were a warning at start and a daemon without a control socket.
        Case(arguments: ["--control-socket", "", "--", "true"],
             line: "--control-socket needs a path, or none for no control socket"),
        Case(arguments: ["--control-socket=", "--", "true"],
             line: "--control-socket needs a path, or none for no control socket"),
        Case(arguments: ["--", "true"], environment: ["OVERSEERD_CONTROL_SOCKET": ""],
             line: "--control-socket needs a path, or none for no control socket"),
    ]

    @Test(arguments: usageErrors)
    func usageErrorIsOneClearLine(_ testCase: Case) throws {
        let run = try RunningProcess.overseerd(testCase.arguments, environment: testCase.environment)
        #expect(try run.waitForExit() == .exited(OverseerExitCode.usage))
        #expect(run.stderrText == "overseerd: \(testCase.line) — see overseerd --help\n")
    }

    /// A misspelt variable used to be ignored without a word.
    @Test func unknownVariableIsNamedOnceAtStart() throws {
        let run = try RunningProcess.overseerd(["--ready", "delay:10ms", "--", "/bin/true"],
                                               environment: ["OVERSEERD_STOP_TIMOUT": "5s", "OVERSEERD_THREADS": "4"])
        _ = try run.waitForExit()
        #expect(run.lines(containing: "unknown variable") == [
            "overseerd: warning: unknown variable OVERSEERD_STOP_TIMOUT ignored: did you mean OVERSEERD_STOP_TIMEOUT?",
            "overseerd: warning: unknown variable OVERSEERD_THREADS ignored: no option is set by it (see overseerd --help)",
        ])
    }

    @Test func checkConfigurationStaysQuietAboutUnknownVariables() throws {
        let run = try RunningProcess.overseerd(["--check-configuration", "--", "/bin/true"],
                                               environment: ["OVERSEERD_STOP_TIMOUT": "5s"])
        #expect(try run.waitForExit() == .exited(0))
        #expect(run.stderrText.isEmpty)
    }

    /// LISTEN_FDS naming fds that are not open sockets is a bad environment, as a bad
    /// LISTEN_FDNAMES already is: a usage error (64), with the one line that says which fd.
    @Test func listenFDsNamingNoSocketsIsAUsageError() throws {
        // sh's $$ is overseerd's pid once it execs.
        let run = try RunningProcess(["/bin/sh", "-c", "LISTEN_PID=$$ LISTEN_FDS=999 exec \"$0\" \"$@\"",
                                      Binaries.overseerd, "--", "/bin/true"],
                                     environment: ["OVERSEERD_CONTROL_SOCKET": "none"])
        let exit = try run.waitForExit()
        #expect(run.stderrText == "overseerd: inherited fd 3 (unknown) is not a socket — check the LISTEN_FDS given to overseerd\n")
        #expect(exit == .exited(OverseerExitCode.usage))
    }
}

import Glibc
import OverseerCore
import OverseerProtocol
import Testing

@Suite struct ConfigurationTests {
    private func listener(_ text: String) throws -> ListenerSpec { try ListenerSpec(parsing: text) }

    private func message(_ configuration: Configuration) -> String? {
        do {
            try configuration.validate()
            return nil
        } catch {
            return error.description
        }
    }

    @Test func defaults() {
        let configuration = Configuration(program: "app")
        #expect(configuration.backlog == 4096)
        #expect(configuration.restartSignal == SIGUSR2)
        #expect(configuration.stopSignal == SIGTERM)
        #expect(configuration.stopTimeout == .seconds(30))
        #expect(configuration.readiness == .delay(.seconds(1)))
        #expect(configuration.readyTimeout == .seconds(60))
        #expect(configuration.parentDeathSignal == SIGTERM)
        #expect(configuration.unixMode == nil)
        #expect(message(configuration) == nil)
    }

    @Test func validWithSeveralListeners() throws {
        var configuration = Configuration(program: "/usr/bin/app", arguments: ["-v"], listeners: [
            try listener("web=:8080"), try listener("admin=127.0.0.1:9000"), try listener(":9001"), try listener(":9002"),
            try listener("dns=udp::8080"), try listener("unix:/run/a.sock"),
            // Port 0 asks for any free port: the same address twice is fine.
            try listener(":0"), try listener(":0"),
        ])
        configuration.unixMode = 0o660
        configuration.stopSignal = SIGKILL
        configuration.readiness = .notify
        configuration.readyTimeout = .milliseconds(1)
        #expect(message(configuration) == nil)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var change: @Sendable (inout Configuration) throws -> Void
        var message: String
        var testDescription: String { message }
    }

    static let invalid: [Case] = [
        Case(change: { $0.program = "" },
             message: "no program given: write overseerd [OPTIONS] -- PROGRAM [ARGS...]"),
        Case(change: { $0.listeners = [try ListenerSpec(parsing: "web=:80"), try ListenerSpec(parsing: "web=:81")] },
             message: "listener name \"web\" is used twice: give each --listen its own NAME="),
        Case(change: { $0.listeners = [try ListenerSpec(parsing: "a=:80"), try ListenerSpec(parsing: "b=:80")] },
             message: "address :80 is given twice: each --listen needs its own address"),
        Case(change: { $0.listeners = [try ListenerSpec(parsing: "80"), try ListenerSpec(parsing: "tcp::80")] },
             message: "address :80 is given twice"),
        Case(change: { $0.listeners = [try ListenerSpec(parsing: "unix:/s"), try ListenerSpec(parsing: "x=unix:/s")] },
             message: "address unix:/s is given twice"),
        Case(change: { $0.listeners = [try ListenerSpec(parsing: "udp:[::1]:53"), try ListenerSpec(parsing: "udp:[::1]:53")] },
             message: "address udp:[::1]:53 is given twice"),
        Case(change: { $0.backlog = 0 }, message: "bad backlog 0: give a number from 1 to 65535"),
        Case(change: { $0.backlog = 65536 }, message: "bad backlog 65536: give a number from 1 to 65535"),
        Case(change: { $0.backlog = -1 }, message: "bad backlog -1"),
        Case(change: { $0.unixMode = 0o1777 }, message: "bad unix socket mode 1777: give octal permissions such as 660"),
        Case(change: { $0.restartSignal = SIGKILL }, message: "--restart-signal cannot be SIGKILL: overseerd cannot use it for that"),
        Case(change: { $0.restartSignal = SIGSTOP }, message: "--restart-signal cannot be SIGSTOP"),
        Case(change: { $0.restartSignal = SIGCHLD }, message: "--restart-signal cannot be SIGCHLD"),
        Case(change: { $0.stopSignal = SIGSTOP }, message: "--stop-signal cannot be SIGSTOP: overseerd cannot use it for that"),
        Case(change: { $0.stopSignal = SIGCHLD }, message: "--stop-signal cannot be SIGCHLD"),
        Case(change: { $0.restartSignal = SIGTERM }, message: "--restart-signal cannot be SIGTERM: it asks overseerd to stop"),
        Case(change: { $0.restartSignal = SIGINT }, message: "--restart-signal cannot be SIGINT: it asks overseerd to stop"),
        Case(change: { $0.restartSignal = SIGQUIT }, message: "--restart-signal cannot be SIGQUIT"),
        Case(change: { $0.readyTimeout = .zero }, message: "--ready-timeout must be longer than 0"),
        Case(change: { $0.readyTimeout = .seconds(-1) }, message: "--ready-timeout must be longer than 0"),
        Case(change: { $0.readiness = .delay(.seconds(60)) },
             message: "--ready delay:1m is not shorter than --ready-timeout 1m: a child could never be ready in time"),
        Case(change: { $0.readiness = .delay(.seconds(5)); $0.readyTimeout = .seconds(2) },
             message: "--ready delay:5s is not shorter than --ready-timeout 2s"),
        // An empty path was taken, then only warned about at start: `none` says "no control socket".
        Case(change: { $0.controlSocket = "" }, message: "--control-socket needs a path, or none for no control socket"),
        Case(change: { $0.controlSocket = "/" + String(repeating: "s", count: 107) },
             message: "control socket path \"/\(String(repeating: "s", count: 107))\" is 108 bytes long; a unix socket path can be at most 107: give a shorter --control-socket PATH"),
        Case(change: { $0.controlSocket = "/run/a\u{0}b" }, message: "control socket path \"/run/a\u{0}b\" contains a NUL byte"),
    ]

    @Test(arguments: invalid)
    func rejects(_ testCase: Case) throws {
        var configuration = Configuration(program: "app")
        try testCase.change(&configuration)
        let text = try #require(message(configuration))
        #expect(text.hasPrefix(testCase.message))
    }

    @Test func unnamedListenersMayShareTheNameUnknown() throws {
        let configuration = Configuration(program: "app", listeners: [try listener(":80"), try listener(":81")])
        #expect(message(configuration) == nil)
    }

    @Test func firstProblemWins() throws {
        var configuration = Configuration(program: "", listeners: [try listener("a=:80"), try listener("a=:80")])
        configuration.backlog = 0
        #expect(message(configuration)?.hasPrefix("no program given") == true)
        configuration.program = "app"
        #expect(message(configuration)?.hasPrefix("listener name \"a\" is used twice") == true)
    }

    @Test func settingsTakeTheirValuesFromTheConfiguration() {
        var configuration = Configuration(program: "app")
        configuration.readiness = .notify
        configuration.readyTimeout = .seconds(7)
        configuration.stopSignal = SIGINT
        configuration.stopTimeout = .seconds(3)
        let settings = Supervision.Settings(configuration)
        #expect(settings == Supervision.Settings(readiness: .notify, readyTimeout: .seconds(7),
                                                 stopSignal: SIGINT, stopTimeout: .seconds(3)))
    }
}

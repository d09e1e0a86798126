import Glibc
import OverseerCore
import Testing

@Suite struct SignalNumberTests {
    @Test(arguments: [
        ("TERM", SIGTERM), ("SIGTERM", SIGTERM), ("term", SIGTERM), ("sigterm", SIGTERM), ("SigTerm", SIGTERM),
        ("USR2", SIGUSR2), ("usr1", SIGUSR1), ("HUP", SIGHUP), ("KILL", SIGKILL), ("INT", SIGINT),
        ("QUIT", SIGQUIT), ("CHLD", SIGCHLD), ("WINCH", SIGWINCH), ("SYS", SIGSYS), ("PWR", SIGPWR),
        ("15", 15), ("1", 1), ("38", 38), ("64", 64), ("SIG38", 38), ("sig15", 15),
    ])
    func parses(_ text: String, _ number: Int32) throws {
        #expect(try SignalNumber.parse(text) == number)
    }

    @Test(arguments: ["", "SIG", "0", "65", "-15", "TERMINATE", "SIGSIGTERM", " TERM", "RTMIN", "1.5"])
    func rejects(_ text: String) {
        #expect {
            _ = try SignalNumber.parse(text)
        } throws: { error in
            (error as? ConfigurationError)?.description == "bad signal \"\(text)\": write a name such as TERM, HUP or USR2"
        }
    }

    @Test(arguments: [(SIGTERM, "SIGTERM"), (SIGUSR2, "SIGUSR2"), (SIGKILL, "SIGKILL"), (SIGHUP, "SIGHUP"),
                      (38, "SIG38"), (0, "SIG0")])
    func names(_ number: Int32, _ name: String) {
        #expect(SignalNumber.name(number) == name)
    }

    @Test(arguments: 1 ... 64)
    func nameRoundTrip(_ number: Int32) throws {
        #expect(try SignalNumber.parse(SignalNumber.name(number)) == number)
    }

    @Test func stoppingSignals() {
        #expect(SignalNumber.stopping == [SIGTERM, SIGINT, SIGQUIT])
    }
}

#if canImport(Glibc)
import Glibc
#endif
@testable import OverseerChild
import OverseerProtocol
import Testing

/// How OverseerChild reads LISTEN_*, NOTIFY_SOCKET, WATCHDOG_* and OVERSEER_*.
@Suite struct EnvironmentParsingTests {
    let pid: Int32 = 4242

    func child(_ environment: [String: String]) -> OverseerChild {
        OverseerChild(environment: environment, ownPID: pid)
    }

    @Test func socketsMeantForThisProcess() {
        let parsed = child(["LISTEN_FDS": "2", "LISTEN_PID": "4242", "LISTEN_FDNAMES": "http:admin"])
        #expect(parsed.sockets == [InheritedSocket(fd: 3, name: "http"), InheritedSocket(fd: 4, name: "admin")])
        #expect(parsed.listenProblem == nil)
        #expect(parsed.hasInheritedSockets)
    }

    @Test(arguments: [
        ["LISTEN_FDS": "1", "LISTEN_PID": "4243", "LISTEN_FDNAMES": "http"],   // meant for another process
        ["LISTEN_FDS": "1", "LISTEN_FDNAMES": "http"],                         // no LISTEN_PID
        ["LISTEN_PID": "4242", "LISTEN_FDNAMES": "http"],                      // no LISTEN_FDS
        ["LISTEN_FDS": "0", "LISTEN_PID": "4242"],                             // none
        [:],
    ])
    func noSocketsWhenNotMeantForUs(environment: [String: String]) {
        let parsed = child(environment)
        #expect(parsed.sockets.isEmpty)
        #expect(parsed.listenProblem == nil)
    }

    @Test func unsetNamesAreUnknown() {
        let parsed = child(["LISTEN_FDS": "3", "LISTEN_PID": "4242"])
        #expect(parsed.sockets.map(\.name) == ["unknown", "unknown", "unknown"])
        #expect(parsed.sockets.map(\.fd) == [3, 4, 5])
    }

    @Test func emptyNamesAreUnknown() {
        #expect(child(["LISTEN_FDS": "1", "LISTEN_PID": "4242", "LISTEN_FDNAMES": ""]).sockets.map(\.name) == ["unknown"])
        #expect(child(["LISTEN_FDS": "3", "LISTEN_PID": "4242", "LISTEN_FDNAMES": "a::b"]).sockets.map(\.name)
            == ["a", "unknown", "b"])
    }

    @Test(arguments: [("2", "http"), ("1", "http:admin"), ("2", ""), ("3", "a:b:c:d")])
    func countMismatchGivesNoSocketsAndSaysWhy(count: String, names: String) throws {
        let parsed = child(["LISTEN_FDS": count, "LISTEN_PID": "4242", "LISTEN_FDNAMES": names])
        #expect(parsed.sockets.isEmpty)
        let problem = try #require(parsed.listenProblem)
        #expect(problem.contains("names for \(count) fds"), "\(problem)")
        let error = #expect(throws: OverseerChildError.self) { try parsed.socket(named: "http") }
        #expect(error?.description.contains(problem) == true)
        #expect(error?.code == .noSocket)
    }

    @Test(arguments: ["web-1.v2", "a=b", "@x", "ü ber", "tab\there", "#3", String(repeating: "n", count: 300)])
    func oddNamesAreKeptAsGiven(name: String) throws {
        let parsed = child(["LISTEN_FDS": "2", "LISTEN_PID": "4242", "LISTEN_FDNAMES": "first:" + name])
        #expect(parsed.sockets.map(\.name) == ["first", name])
        #expect(try parsed.socket(named: name).fd == 4)
    }

    @Test(arguments: [("abc", "4242"), ("-1", "4242"), ("1", "pid"), ("1", "0")])
    func malformedNumbersGiveNoSocketsAndSayWhy(count: String, listenPID: String) {
        let parsed = child(["LISTEN_FDS": count, "LISTEN_PID": listenPID])
        #expect(parsed.sockets.isEmpty)
        #expect(parsed.listenProblem != nil)
    }

    @Test func missingNameListsTheNamesThatExist() throws {
        let parsed = child(["LISTEN_FDS": "3", "LISTEN_PID": "4242", "LISTEN_FDNAMES": "http:admin:"])
        let error = #expect(throws: OverseerChildError.self) { try parsed.socket(named: "metrics") }
        #expect(error?.description
            == "no inherited socket named metrics (passed: http, admin, unknown; name them with overseerd -l NAME=ADDRESS)")
        let none = #expect(throws: OverseerChildError.self) { try child([:]).socket(named: "http") }
        #expect(none?.description
            == "no inherited socket named http (none were passed: run under overseerd, e.g. overseerd -l http=127.0.0.1:8080 -- PROGRAM)")
        let index = #expect(throws: OverseerChildError.self) { try parsed.socket(at: 3) }
        #expect(index?.description.hasPrefix("no inherited socket named #3 (fd 6)") == true)
        #expect(try parsed.socket(at: 1).name == "admin")
    }

    @Test func overseerFacts() {
        let parsed = child([
            "OVERSEER_GENERATION": "7", "OVERSEER_BINARY_PATH": "/usr/bin/app", "OVERSEER_BINARY_ID": "ab12",
            "NOTIFY_SOCKET": "@overseerd/1/7/ff",
        ])
        #expect(parsed.generation == 7)
        #expect(parsed.isUnderOverseer)
        #expect(parsed.binaryPath == "/usr/bin/app")
        #expect(parsed.binaryID == "ab12")
        #expect(parsed.notifySocket == "@overseerd/1/7/ff")
        let plain = child(["NOTIFY_SOCKET": ""])
        #expect(!plain.isUnderOverseer)
        #expect(plain.generation == nil)
        #expect(plain.notifySocket == nil)
    }

    @Test func watchdogIntervalOnlyWhenMeantForUs() {
        #expect(child(["WATCHDOG_USEC": "3000000"]).watchdogInterval == .seconds(3))
        #expect(child(["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "4242"]).watchdogInterval == .seconds(3))
        #expect(child(["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"]).watchdogInterval == nil)
        #expect(child(["WATCHDOG_USEC": "0"]).watchdogInterval == nil)
        #expect(child(["WATCHDOG_USEC": "x"]).watchdogInterval == nil)
    }

    @Test func currentReadsTheProcessEnvironmentAndClearsListenVariables() {
        // The only test that touches `current`: it is read once per process.
        setenv("LISTEN_FDS", "1", 1)
        setenv("LISTEN_PID", String(getpid()), 1)
        setenv("LISTEN_FDNAMES", "probe", 1)
        setenv("LISTEN_PIDFDID", "12", 1)
        let current = OverseerChild.current
        #expect(current.sockets.map(\.name) == ["probe"])
        for name in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "LISTEN_PIDFDID"] {
            #expect(getenv(name) == nil, "\(name) was left set")
        }
    }
}

import OverseerProtocol
import Testing

@Suite struct ListenFDsTests {
    private func names(_ fds: ListenFDs?) -> [String]? { fds?.names.map(\.rawValue) }

    @Test func parsesSocketsMeantForUs() throws {
        let fds = try ListenFDs.parse(
            environment: ["LISTEN_FDS": "2", "LISTEN_PID": "4242", "LISTEN_FDNAMES": "web:admin"], ownPID: 4242)
        #expect(names(fds) == ["web", "admin"])
        #expect(fds?.count == 2)
        #expect(fds?.fds == 3 ..< 5)
    }

    @Test(arguments: [
        ["LISTEN_FDS": "1", "LISTEN_PID": "4243"],
        ["LISTEN_FDS": "1"],
        ["LISTEN_PID": "4242"],
        [:],
        // A bad count for another process is not ours to complain about.
        ["LISTEN_FDS": "many", "LISTEN_PID": "1"],
    ])
    func notForUs(_ environment: [String: String]) throws {
        #expect(try ListenFDs.parse(environment: environment, ownPID: 4242) == nil)
    }

    @Test(arguments: [
        (["LISTEN_FDS": "1", "LISTEN_PID": "abc"], "bad LISTEN_PID=abc: not a pid"),
        (["LISTEN_FDS": "1", "LISTEN_PID": "0"], "bad LISTEN_PID=0: not a pid"),
        (["LISTEN_FDS": "1", "LISTEN_PID": "-4242"], "bad LISTEN_PID=-4242: not a pid"),
        (["LISTEN_FDS": "1", "LISTEN_PID": ""], "bad LISTEN_PID=: not a pid"),
        (["LISTEN_FDS": "x", "LISTEN_PID": "4242"], "bad LISTEN_FDS=x: not a count of fds"),
        (["LISTEN_FDS": "-1", "LISTEN_PID": "4242"], "bad LISTEN_FDS=-1: not a count of fds"),
        (["LISTEN_FDS": "", "LISTEN_PID": "4242"], "bad LISTEN_FDS=: not a count of fds"),
        (["LISTEN_FDS": "65537", "LISTEN_PID": "4242"], "bad LISTEN_FDS=65537: not a count of fds"),
        (["LISTEN_FDS": "2", "LISTEN_PID": "4242", "LISTEN_FDNAMES": "web"], "bad LISTEN_FDNAMES=web: 1 names for 2 fds"),
        (["LISTEN_FDS": "1", "LISTEN_PID": "4242", "LISTEN_FDNAMES": "a:b:c"], "bad LISTEN_FDNAMES=a:b:c: 3 names for 1 fds"),
        (["LISTEN_FDS": "1", "LISTEN_PID": "4242", "LISTEN_FDNAMES": "a b"], "bad socket name \"a b\""),
    ])
    func rejects(_ environment: [String: String], _ message: String) {
        #expect {
            _ = try ListenFDs.parse(environment: environment, ownPID: 4242)
        } throws: { error in
            (error as? ProtocolError)?.description.contains(message) == true
        }
    }

    @Test func emptyNamesBecomeUnknown() throws {
        let fds = try ListenFDs.parse(
            environment: ["LISTEN_FDS": "3", "LISTEN_PID": "7", "LISTEN_FDNAMES": ":web:"], ownPID: 7)
        #expect(names(fds) == ["unknown", "web", "unknown"])
    }

    @Test(arguments: [0, 1, 3])
    func namesUnsetAreAllUnknown(_ count: Int) throws {
        let fds = try ListenFDs.parse(environment: ["LISTEN_FDS": String(count), "LISTEN_PID": "7"], ownPID: 7)
        #expect(names(fds) == Array(repeating: "unknown", count: count))
    }

    @Test func zeroSocketsIgnoreNames() throws {
        // sd_listen_fds_with_names(3) returns 0 before looking at LISTEN_FDNAMES.
        let fds = try ListenFDs.parse(
            environment: ["LISTEN_FDS": "0", "LISTEN_PID": "7", "LISTEN_FDNAMES": ""], ownPID: 7)
        #expect(fds == ListenFDs(names: []))
    }

    @Test func environmentEntries() throws {
        let fds = ListenFDs(names: [try SocketName("web"), .unnamed, try SocketName("udp")])
        let entries = fds.environmentEntries.map { "\($0.name)=\($0.value)" }
        #expect(entries == ["LISTEN_FDS=3", "LISTEN_FDNAMES=web:unknown:udp"])
    }

    @Test(arguments: [[], ["web"], ["web", "unknown", "a.b"], Array(repeating: "x", count: 20)])
    func roundTrip(_ raw: [String]) throws {
        let original = ListenFDs(names: try raw.map { name throws(ProtocolError) in try SocketName(name) })
        var environment = Dictionary(uniqueKeysWithValues: original.environmentEntries.map { ($0.name, $0.value) })
        environment["LISTEN_PID"] = "99"
        #expect(try ListenFDs.parse(environment: environment, ownPID: 99) == original)
    }
}

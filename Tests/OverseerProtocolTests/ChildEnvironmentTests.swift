import OverseerProtocol
import Testing

@Suite struct ChildEnvironmentTests {
    let facts = ChildEnvironment.Facts(binaryPath: "/usr/bin/app", binaryID: "abc123", generation: 3,
                                       notifySocket: "@overseerd/3")
    let placeholder = String(repeating: "0", count: 20)

    @Test func withSockets() throws {
        let sockets = ListenFDs(names: [try SocketName("web"), .unnamed])
        let entries = ChildEnvironment.entries(
            inherited: [(name: "PATH", value: "/bin"), (name: "HOME", value: "/root")], sockets: sockets, facts: facts)
        #expect(entries == [
            "PATH=/bin", "HOME=/root",
            "LISTEN_FDS=2", "LISTEN_FDNAMES=web:unknown",
            "NOTIFY_SOCKET=@overseerd/3",
            "OVERSEER_BINARY_PATH=/usr/bin/app", "OVERSEER_BINARY_ID=abc123", "OVERSEER_GENERATION=3",
            "LISTEN_PID=\(placeholder)",
        ])
    }

    @Test func withoutSocketsNoListenVariables() {
        let entries = ChildEnvironment.entries(
            inherited: [(name: "PATH", value: "/bin")], sockets: ListenFDs(names: []),
            facts: .init(binaryPath: "/a", binaryID: "id", generation: 1))
        #expect(entries == ["PATH=/bin", "OVERSEER_BINARY_PATH=/a", "OVERSEER_BINARY_ID=id", "OVERSEER_GENERATION=1"])
        #expect(!entries.contains { $0.hasPrefix("LISTEN_") || $0.hasPrefix("NOTIFY_SOCKET=") })
    }

    @Test(arguments: [
        "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "LISTEN_PIDFDID", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
        "OVERSEER_BINARY_PATH", "OVERSEER_BINARY_ID", "OVERSEER_GENERATION", "OVERSEER_CHECK_TOKEN",
    ])
    func dropsInheritedContractVariable(_ name: String) {
        let entries = ChildEnvironment.entries(
            inherited: [(name: "A", value: "1"), (name: name, value: "stale"), (name: "B", value: "2")],
            sockets: ListenFDs(names: [.unnamed]), facts: facts)
        #expect(!entries.contains("\(name)=stale"))
        #expect(entries.prefix(2) == ["A=1", "B=2"])
    }

    @Test func listenPIDIsLastAndWideEnough() {
        #expect(ChildEnvironment.listenPIDPlaceholder == placeholder)
        // Any pid_t fits in the placeholder's width.
        #expect(String(Int32.max).count <= ChildEnvironment.listenPIDPlaceholder.count)
        let entries = ChildEnvironment.entries(
            inherited: [(name: "Z", value: "last?")], sockets: ListenFDs(names: [.unnamed]), facts: facts)
        #expect(entries.last == "LISTEN_PID=\(placeholder)")
        #expect(entries.filter { $0.hasPrefix("LISTEN_PID=") }.count == 1)
    }

    @Test func inheritedOrderAndValuesKept() {
        let inherited = [(name: "X", value: "a=b"), (name: "EMPTY", value: ""), (name: "LISTEN_FDS_X", value: "keep")]
        let entries = ChildEnvironment.entries(inherited: inherited, sockets: ListenFDs(names: []), facts: facts)
        #expect(Array(entries.prefix(3)) == ["X=a=b", "EMPTY=", "LISTEN_FDS_X=keep"])
    }

    @Test func entriesParseBackAsTheChildSeesThem() throws {
        let sockets = ListenFDs(names: [try SocketName("a"), try SocketName("b")])
        let entries = ChildEnvironment.entries(inherited: [(name: "LISTEN_FDS", value: "9")], sockets: sockets, facts: facts)
        var environment: [String: String] = [:]
        for entry in entries {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            environment[String(parts[0])] = String(parts[1])
        }
        environment["LISTEN_PID"] = "1234"  // what the spawner writes over the placeholder
        #expect(try ListenFDs.parse(environment: environment, ownPID: 1234) == sockets)
        #expect(environment["OVERSEER_GENERATION"] == "3")
    }
}

import OverseerCore
import Testing

/// Inputs fuzz/run found (libFuzzer, fuzz/README.md), each broke a property the harness checks.
@Suite struct FuzzFindingsTests {
    /// `[[]:1` parsed to host `[`, written back as `[:1`, which did not parse; `[tcp]:80`
    /// was written as `tcp:80`, which parses to port 80 on every interface.
    @Test(arguments: [
        ("[[]:1", "[[]:1"), ("[tcp]:80", "[tcp]:80"), ("[udp]:80", "[udp]:80"), ("[unix]:80", "[unix]:80"),
        ("[a b]:80", "[a b]:80"), ("[a/b]:80", "[a/b]:80"), ("udp:tcp:53", "udp:tcp:53"), ("[host]:80", "host:80"),
    ])
    func listenAddressDescriptionParsesBack(_ text: String, _ description: String) throws {
        let address = try ListenAddress(parsing: text)
        #expect(address.description == description)
        #expect(try ListenAddress(parsing: address.description) == address)
    }

    /// An unnamed listener on a host starting with a combining mark was written as
    /// `unknown=\u{6DC}…`, whose `=` and mark make one Character: it parsed back as an
    /// address `unknown=…`, not as the name `unknown`.
    @Test func listenerNameSplitsBeforeACombiningMark() throws {
        let spec = try ListenerSpec(parsing: "\u{06DC}x.]010.:8")
        let again = try ListenerSpec(parsing: spec.description)
        #expect(again.name == spec.name)
        #expect(again.address == spec.address)
        #expect(try ListenerSpec(parsing: "web=\u{301}a:80").name.rawValue == "web")
    }

    /// Each part was below 10^18 ns but their sum was not bounded: 1067235931 s was taken,
    /// could not be written back (totalNanoseconds saturates past 292 years), and a
    /// deadline `now + totalNanoseconds` would overflow.
    @Test(arguments: ["5m50502m9222902m922299s509909092s", "277777h277777h277777h277777h"])
    func durationSumIsBounded(_ text: String) {
        #expect(throws: ConfigurationError.self) { try Duration(parsing: text) }
    }

    @Test func durationJustBelowTheBoundParsesBack() throws {
        let duration = try Duration(parsing: "138888h138888h")
        #expect(try Duration(parsing: duration.shortDescription) == duration)
    }

    /// `control\t\tPATH` (no fd) was taken as a control path without a socket, which
    /// `encoded` does not write: the state did not survive a second handover.
    @Test func handoverControlRecordNeedsAnFD() {
        let text = "overseerd-handover\t1\nstarted\t5\nchild\t1\t99\t\t\t\tid\t5\t\ncontrol\t\t/run/o.sock\n"
        #expect(throws: ConfigurationError.self) { try HandoverState(parsing: text) }
    }

    /// A field ending in "\r" (a child's `STATUS=…\r`) and the newline after it made one
    /// "\r\n" Character, so the lines did not split and the next image rejected the state.
    @Test(arguments: ["\r", "ready\r", "a\r\nb", "100%\u{301}", "%25\u{301}", "\t\u{301}"])
    func handoverKeepsOddFields(_ field: String) throws {
        let state = HandoverState(
            startedAt: 1,
            listeners: [.init(fd: 3, name: "web", kind: "stream", localAddress: field, createdPath: field, inherited: true)],
            child: .init(generation: 2, pid: 42, pidfd: 5, notifyFD: nil, notifyAddress: field, binaryID: field,
                         startedAt: 7, lastStatus: field),
            controlFD: 6, controlPath: field, rejected: [field, field])
        #expect(try HandoverState(parsing: state.encoded) == state)
    }
}

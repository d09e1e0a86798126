#if canImport(Glibc)
import Glibc
#endif
import OverseerCore
import OverseerProtocol
@testable import OverseerSystem
import OverseerTestSupport
import SystemPackage
import Testing

/// The steering program on real sockets of one SO_REUSEPORT group: which
/// socket each client's datagrams reach. Skips with a line where BPF cannot be
/// loaded (not under CI=true).
@Suite struct UDPSteeringTests {
    /// A group: the first socket bound the way overseerd binds a steered `--listen udp:`.
    private struct Group {
        let anchor: Listener
        var port: UInt16 { UDPFlowSupport.port(of: anchor.fd.rawValue) }

        init(_ listen: String = "udp:127.0.0.1:0") throws {
            anchor = try ListenerBinder.bind(ListenerSpec(parsing: "flows=\(listen)"), backlog: 16, unixMode: nil, reusePort: true)
        }

        func join() throws -> FileDescriptor {
            let fd = try ReusePortSocket.join(groupOf: anchor.fd)
            try Posix.setNonBlocking(fd.rawValue)
            return fd
        }
    }

    /// Sends one datagram from each client, then reads them all (waiting on all
    /// sockets at once): which socket got which client's.
    private func deliver(_ clients: [Int32], to sockets: [FileDescriptor], tag: String) -> [Int: [String]] {
        for (index, client) in clients.enumerated() { UDPFlowSupport.send(client, "\(tag)\(index)") }
        var got: [Int: [String]] = [:]
        var received = 0
        var pollers = sockets.map { pollfd(fd: $0.rawValue, events: Int16(POLLIN), revents: 0) }
        while received < clients.count, poll(&pollers, nfds_t(pollers.count), 5000) > 0 {
            for (index, poller) in pollers.enumerated() where poller.revents & Int16(POLLIN) != 0 {
                while let text = UDPFlowSupport.receive(poller.fd, timeout: .zero) {
                    got[index, default: []].append(text)
                    received += 1
                }
            }
        }
        return got
    }

    @Test func flowsStayWithTheirSocketAndNewFlowsGoToTheNewest() throws {
        guard try UDPFlowSupport.steeringAvailable("UDPSteeringTests") else { return }
        let steering = try UDPSteering(flowTimeout: .seconds(125))
        defer { steering.close() }
        let group = try Group()
        defer { ListenerBinder.close([group.anchor]) }
        try steering.attach(to: group.anchor.fd)
        let first = try group.join()
        defer { Posix.close(first) }
        try steering.place(first, slot: 1, tag: 11)
        try steering.directNewFlows(to: 1)
        let old = (0..<20).map { _ in UDPFlowSupport.client(port: group.port) }
        defer { old.forEach { Posix.close($0) } }
        #expect(deliver(old, to: [first], tag: "a")[0]?.count == 20)

        // A second socket joins and takes the new flows; the old ones stay.
        let second = try group.join()
        defer { Posix.close(second) }
        try steering.place(second, slot: 2, tag: 12)
        try steering.directNewFlows(to: 2)
        let fresh = (0..<10).map { _ in UDPFlowSupport.client(port: group.port) }
        defer { fresh.forEach { Posix.close($0) } }
        for round in 0..<3 {
            let oldSide = deliver(old, to: [first, second], tag: "o\(round)-")
            #expect(oldSide[0]?.count == 20 && oldSide[1] == nil, "round \(round): \(oldSide)")
            let newSide = deliver(fresh, to: [first, second], tag: "n\(round)-")
            #expect(newSide[1]?.count == 10 && newSide[0] == nil, "round \(round): \(newSide)")
        }
        let counts = try steering.flowCounts(tags: [0, 11, 12])
        #expect(counts[1] == 20 && counts[2] == 10)
        // Nothing was read from the anchor: no datagram went astray.
        #expect(UDPFlowSupport.receive(group.anchor.fd.rawValue, timeout: .zero) == nil)
    }

    @Test func theFlowsOfARemovedSocketGoToTheNewest() throws {
        guard try UDPFlowSupport.steeringAvailable("UDPSteeringTests") else { return }
        let steering = try UDPSteering(flowTimeout: .seconds(125))
        defer { steering.close() }
        let group = try Group()
        defer { ListenerBinder.close([group.anchor]) }
        try steering.attach(to: group.anchor.fd)
        let first = try group.join()
        try steering.place(first, slot: 1, tag: 11)
        try steering.directNewFlows(to: 1)
        let clients = (0..<8).map { _ in UDPFlowSupport.client(port: group.port) }
        defer { clients.forEach { Posix.close($0) } }
        #expect(deliver(clients, to: [first], tag: "a")[0]?.count == 8)
        let second = try group.join()
        defer { Posix.close(second) }
        try steering.place(second, slot: 2, tag: 12)
        try steering.directNewFlows(to: 2)
        // The first generation exits: its slot is emptied and its socket closed.
        try steering.clear(slot: 1)
        Posix.close(first)
        #expect(deliver(clients, to: [second], tag: "b")[0]?.count == 8)
        // They now belong to the second socket, even when another is placed in slot 1 later.
        let third = try group.join()
        defer { Posix.close(third) }
        try steering.place(third, slot: 1, tag: 13)
        let after = deliver(clients, to: [second, third], tag: "c")
        #expect(after[0]?.count == 8 && after[1] == nil, "\(after)")
        #expect(try steering.flowCounts(tags: [0, 13, 12])[2] == 8)
    }

    @Test func aFlowWhoseSlotHoldsAnotherSocketIsANewFlow() throws {
        guard try UDPFlowSupport.steeringAvailable("UDPSteeringTests") else { return }
        let steering = try UDPSteering(flowTimeout: .seconds(125))
        defer { steering.close() }
        let group = try Group("udp::0")
        defer { ListenerBinder.close([group.anchor]) }
        try steering.attach(to: group.anchor.fd)
        let first = try group.join(), second = try group.join(), replacement = try group.join()
        defer { [first, second, replacement].forEach { Posix.close($0) } }
        try steering.place(first, slot: 5, tag: 1)
        try steering.directNewFlows(to: 5)
        let clients = (0..<4).map { _ in UDPFlowSupport.client(port: group.port) }
        defer { clients.forEach { Posix.close($0) } }
        #expect(deliver(clients, to: [first], tag: "a")[0]?.count == 4)
        try steering.place(second, slot: 6, tag: 2)
        try steering.directNewFlows(to: 6)
        // Slot 5 gets another socket (tag 3) without being emptied first: the flows are not its.
        try steering.place(replacement, slot: 5, tag: 3)
        let after = deliver(clients, to: [first, second, replacement], tag: "b")
        #expect(after[1]?.count == 4, "\(after)")
    }

    /// The IPv6 key (both addresses, 32 bytes) on real IPv6 datagrams, and IPv4 ones to the same dual-stack group.
    @Test func ipv6AndIPv4FlowsOnADualStackGroup() throws {
        guard try UDPFlowSupport.steeringAvailable("UDPSteeringTests") else { return }
        let steering = try UDPSteering(flowTimeout: .seconds(125))
        defer { steering.close() }
        let group = try Group("udp::0")
        defer { ListenerBinder.close([group.anchor]) }
        try steering.attach(to: group.anchor.fd)
        let first = try group.join(), second = try group.join()
        defer { [first, second].forEach { Posix.close($0) } }
        try steering.place(first, slot: 1, tag: 1)
        try steering.directNewFlows(to: 1)
        let old6 = (0..<6).map { _ in UDPFlowSupport.client6(port: group.port) }
        let old4 = (0..<6).map { _ in UDPFlowSupport.client(port: group.port) }
        defer { (old6 + old4).forEach { Posix.close($0) } }
        #expect(deliver(old6 + old4, to: [first, second], tag: "a")[0]?.count == 12)
        try steering.place(second, slot: 2, tag: 2)
        try steering.directNewFlows(to: 2)
        let new6 = (0..<4).map { _ in UDPFlowSupport.client6(port: group.port) }
        defer { new6.forEach { Posix.close($0) } }
        for round in 0..<2 {
            let old = deliver(old6 + old4, to: [first, second], tag: "o\(round)-")
            #expect(old[0]?.count == 12 && old[1] == nil, "\(old)")
            let fresh = deliver(new6, to: [first, second], tag: "n\(round)-")
            #expect(fresh[1]?.count == 4 && fresh[0] == nil, "\(fresh)")
        }
        #expect(try steering.flowCounts(tags: [0, 1, 2]).prefix(3) == [0, 12, 4])
    }

    @Test func aFlowSilentLongerThanTheTimeoutIsANewFlow() throws {
        guard try UDPFlowSupport.steeringAvailable("UDPSteeringTests") else { return }
        // A zero timeout: every datagram finds its flow expired, whatever the clock says.
        let steering = try UDPSteering(flowTimeout: .zero)
        defer { steering.close() }
        let group = try Group()
        defer { ListenerBinder.close([group.anchor]) }
        try steering.attach(to: group.anchor.fd)
        let first = try group.join(), second = try group.join()
        defer { [first, second].forEach { Posix.close($0) } }
        try steering.place(first, slot: 1, tag: 1)
        try steering.place(second, slot: 2, tag: 2)
        try steering.directNewFlows(to: 1)
        let clients = (0..<4).map { _ in UDPFlowSupport.client(port: group.port) }
        defer { clients.forEach { Posix.close($0) } }
        #expect(deliver(clients, to: [first, second], tag: "a")[0]?.count == 4)
        try steering.directNewFlows(to: 2)
        #expect(deliver(clients, to: [first, second], tag: "b")[1]?.count == 4)
        #expect(try steering.flowCounts(tags: [0, 1, 2]) == [UInt64](repeating: 0, count: Int(UDPSteering.slotCount)))
    }

    @Test func aSocketWithoutReusePortHasNoGroupToJoin() throws {
        let plain = try ListenerBinder.bind(ListenerSpec(parsing: "plain=udp:127.0.0.1:0"), backlog: 16, unixMode: nil)
        defer { ListenerBinder.close([plain]) }
        #expect(!ReusePortSocket.hasReusePort(plain.fd))
        #expect(throws: SystemError.self) { _ = try ReusePortSocket.join(groupOf: plain.fd) }
        let steered = try ListenerBinder.bind(ListenerSpec(parsing: "steered=udp:127.0.0.1:0"), backlog: 16, unixMode: nil, reusePort: true)
        defer { ListenerBinder.close([steered]) }
        #expect(ReusePortSocket.hasReusePort(steered.fd))
    }

    /// No SO_REUSEADDR on a UDP listener, steered or shared: another socket cannot share its
    /// port with SO_REUSEADDR (any user could, before), nor join with SO_REUSEPORT unless steered.
    @Test(arguments: [false, true])
    func noOtherSocketSharesAUDPListenersPortByReuseAddr(steered: Bool) throws {
        let listener = try ListenerBinder.bind(ListenerSpec(parsing: "dns=udp:127.0.0.1:0"), backlog: 16, unixMode: nil, reusePort: steered)
        defer { ListenerBinder.close([listener]) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UDPFlowSupport.port(of: listener.fd.rawValue).bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        for option in [SO_REUSEADDR, SO_REUSEPORT] {
            let intruder = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(intruder) }
            var one: Int32 = 1
            setsockopt(intruder, SOL_SOCKET, option, &one, socklen_t(MemoryLayout<Int32>.size))
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(intruder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            } == 0
            // This process is the listener's own user: only a steered listener's group takes it (SO_REUSEPORT).
            #expect(bound == (steered && option == SO_REUSEPORT), "option \(option), steered \(steered)")
        }
    }
}

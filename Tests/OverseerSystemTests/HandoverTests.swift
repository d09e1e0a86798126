import OverseerCore
import OverseerProtocol
import OverseerSystem
import SystemPackage
import Testing

/// What one overseerd image hands the next: listeners come back as they were.
@Suite struct HandoverTests {
    static func listener(_ origin: Listener.Origin, local: String, kind: String, fd: Int32 = 3) throws -> Listener {
        Listener(fd: FileDescriptor(rawValue: fd), name: try SocketName("http"), origin: origin, localAddress: local,
                 kind: kind, createdPath: kind == "unix" ? String(local.dropFirst(5)) : nil)
    }

    /// A TCP, UDP or unix listener bound from --listen keeps its address through
    /// the state text; an inherited one stays inherited. (Every bound listener
    /// used to come back as a unix socket named after its local address.)
    @Test(arguments: [
        (Listener.Origin.bound(.inet(host: "127.0.0.1", port: 8080, transport: .stream)), "127.0.0.1:8080", "tcp"),
        (Listener.Origin.bound(.inet(host: nil, port: 53, transport: .datagram)), "[::]:53", "udp"),
        (Listener.Origin.bound(.inet(host: "::1", port: 9000, transport: .stream)), "[::1]:9000", "tcp"),
        (Listener.Origin.bound(.unix(path: "/run/app/app.sock")), "unix:/run/app/app.sock", "unix"),
        (Listener.Origin.inherited, "127.0.0.1:80", "tcp"),
    ])
    func listenerComesBackAsItWas(origin: Listener.Origin, local: String, kind: String) throws {
        let original = try Self.listener(origin, local: local, kind: kind)
        let state = HandoverState(startedAt: 1, listeners: [Handover.record(of: original)],
                                  child: .init(generation: 1, pid: 2, pidfd: nil, notifyFD: nil, notifyAddress: nil,
                                               binaryID: "", startedAt: 1, lastStatus: nil),
                                  controlFD: nil, controlPath: nil, rejected: [])
        let parsed = try HandoverState(parsing: state.encoded)
        let restored = Handover.listener(from: try #require(parsed.listeners.first))
        #expect(restored.origin == original.origin)
        #expect(restored.name == original.name)
        #expect(restored.fd == original.fd)
        #expect(restored.localAddress == original.localAddress)
        #expect(restored.kind == original.kind)
        #expect(restored.createdPath == original.createdPath)
    }

    /// A state written by an image from before addresses were recorded ("bound"
    /// alone) still gives a TCP listener a TCP origin.
    @Test func olderStateFallsBackToTheLocalAddress() throws {
        let record = HandoverState.ListenerRecord(fd: 3, name: "http", kind: "tcp", localAddress: "127.0.0.1:8080",
                                                  createdPath: nil, inherited: false)
        #expect(Handover.listener(from: record).origin == .bound(.inet(host: "127.0.0.1", port: 8080, transport: .stream)))
    }

    /// The serving child's last WATCHDOG=1 goes to the next image (--watchdog relay); without one
    /// the child record keeps the nine fields an older image reads.
    @Test func lastWatchdogPingIsHandedOver() throws {
        func state(_ ping: Int64?) -> HandoverState {
            HandoverState(startedAt: 1, listeners: [],
                          child: .init(generation: 3, pid: 2, pidfd: 5, notifyFD: 6, notifyAddress: "@n", binaryID: "b",
                                       startedAt: 1, lastStatus: nil, lastWatchdog: ping),
                          controlFD: nil, controlPath: nil, rejected: [])
        }
        #expect(try HandoverState(parsing: state(123_456_789).encoded).child.lastWatchdog == 123_456_789)
        let without = state(nil).encoded
        #expect(try HandoverState(parsing: without).child.lastWatchdog == nil)
        #expect(without.split(separator: "\n").first { $0.hasPrefix("child") }?.split(separator: "\t", omittingEmptySubsequences: false).count == 9)
    }

    /// The --metrics-listen socket goes to the next image as its own record (not among the
    /// child's listeners), with the socket file to remove; a state without it has none.
    @Test func theMetricsListenerIsHandedOverApart() throws {
        let metrics = HandoverState.ListenerRecord(fd: 9, name: "metrics", kind: "unix", localAddress: "unix:/run/app/m.sock",
                                                   createdPath: "/run/app/m.sock", inherited: false,
                                                   boundAddress: "unix:/run/app/m.sock")
        let state = HandoverState(startedAt: 1, listeners: [],
                                  child: .init(generation: 1, pid: 2, pidfd: 5, notifyFD: nil, notifyAddress: nil, binaryID: "b",
                                               startedAt: 1, lastStatus: nil),
                                  controlFD: 7, controlPath: "/run/app/c.sock", rejected: [], metricsListener: metrics)
        let parsed = try HandoverState(parsing: state.encoded)
        #expect(parsed == state)
        #expect(parsed.listeners.isEmpty)
        #expect(parsed.fds.contains(9))
        #expect(Handover.listener(from: try #require(parsed.metricsListener)).createdPath == "/run/app/m.sock")
        var without = state
        without.metricsListener = nil
        #expect(try HandoverState(parsing: without.encoded).metricsListener == nil)
    }

    /// Only an image that says it reads the metrics record is handed one: an older image
    /// would refuse the whole state ("unknown record") and exit, taking the child with it.
    @Test func theMetricsListenerGoesOnlyToAnImageThatTakesItOver() {
        #expect(HandoverState.takesOverMetrics(checkAnswer: HandoverState.checkConfigurationAnswer(version: "0.2.0") + "\n"))
        #expect(!HandoverState.takesOverMetrics(checkAnswer: "overseerd 0.1.0: the command line is valid\n"))
        #expect(!HandoverState.takesOverMetrics(checkAnswer: ""))
        let old = "overseerd-handover\t1\nstarted\t1\nchild\t1\t2\t\t\t\tb\t1\t\nmetrics\t9\tmetrics\ttcp\t127.0.0.1:1\t\tbound\n"
        #expect((try? HandoverState(parsing: old))?.metricsListener?.fd == 9)
    }

    /// The binaries' record (a trial, the last good binary) goes to an image that says it reads it.
    @Test func theBinaryLifeRecordIsHandedOverToAnImageThatTakesItOver() throws {
        let record = "overseerd-state 2\ninstalled \(String(repeating: "b", count: 64)) 2.0%20rc\ntrial\ngood \(String(repeating: "a", count: 64))\n"
        let state = HandoverState(startedAt: 1, listeners: [],
                                  child: .init(generation: 2, pid: 2, pidfd: 5, notifyFD: nil, notifyAddress: nil, binaryID: "b",
                                               startedAt: 1, lastStatus: nil),
                                  controlFD: nil, controlPath: nil, rejected: [], binaryLife: record)
        #expect(try HandoverState(parsing: state.encoded).binaryLife == record)
        #expect(HandoverState.takesOverBinaryLife(checkAnswer: HandoverState.checkConfigurationAnswer(version: "0.3.0") + "\n"))
        #expect(!HandoverState.takesOverBinaryLife(checkAnswer: "overseerd 0.1.0: the command line is valid (takes over: metrics, output)\n"))
    }

    /// The output pipes of --child-output capture go to the next image, and only to one
    /// that says it reads them: an image that answers "(takes over: metrics)" does not.
    @Test func theChildOutputPipesAreHandedOverToAnImageThatTakesThemOver() throws {
        let state = HandoverState(startedAt: 1, listeners: [],
                                  child: .init(generation: 4, pid: 2, pidfd: 5, notifyFD: nil, notifyAddress: nil, binaryID: "b",
                                               startedAt: 1, lastStatus: nil),
                                  controlFD: nil, controlPath: nil, rejected: [],
                                  childOutput: [.init(fd: 11, generation: 4, pid: 2, stream: "stdout"),
                                                .init(fd: 12, generation: 4, pid: 2, stream: "stderr")])
        let parsed = try HandoverState(parsing: state.encoded)
        #expect(parsed == state)
        #expect(parsed.fds.contains(11) && parsed.fds.contains(12))
        #expect(HandoverState.takesOverChildOutput(checkAnswer: HandoverState.checkConfigurationAnswer(version: "0.2.0") + "\n"))
        #expect(HandoverState.takesOverMetrics(checkAnswer: HandoverState.checkConfigurationAnswer(version: "0.2.0")))
        #expect(!HandoverState.takesOverChildOutput(checkAnswer: "overseerd 0.1.0: the command line is valid (takes over: metrics)\n"))
        #expect(HandoverState.takesOverMetrics(checkAnswer: "overseerd 0.1.0: the command line is valid (takes over: metrics)\n"))
        #expect(throws: ConfigurationError.self) {
            try HandoverState(parsing: "overseerd-handover\t1\nstarted\t1\nchild\t1\t2\t\t\t\tb\t1\t\noutput\t11\t1\t2\tstdin\n")
        }
    }
}

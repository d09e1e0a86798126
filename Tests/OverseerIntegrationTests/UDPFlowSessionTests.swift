import Foundation
import Glibc
import OverseerCore
import OverseerTestSupport
import Testing

/// UDP flows across restarts with real processes: OverseerTestChild answers each
/// datagram with its generation and the count of that flow's datagrams it got
/// (kept in its memory), so a datagram lost or sent to the wrong generation
/// shows in the next answer. Skips with a line where BPF cannot be loaded
/// (not under CI=true).
@Suite(.serialized) struct UDPFlowSessionTests {
    struct Answer: Equatable, CustomStringConvertible {
        let generation: Int
        let count: Int
        var description: String { "gen \(generation) #\(count)" }
    }

    /// One client flow: its own connected socket (its own source port).
    final class Flow {
        let fd: Int32
        init(port: UInt16) { fd = UDPFlowSupport.client(port: port) }
        deinit { close(fd) }

        /// Sends one datagram and reads the answer ("generation G pid P count N").
        func exchange() -> Answer? {
            UDPFlowSupport.send(fd, "x")
            guard let text = UDPFlowSupport.receive(fd, timeout: .seconds(5)) else { return nil }
            let words = text.split(separator: " ")
            guard words.count == 6, let generation = Int(words[1]), let count = Int(words[5]) else { return nil }
            return Answer(generation: generation, count: count)
        }
    }

    func overseerd(_ extra: [String], scratch: ScratchDirectory, wrapper: [String] = [], stopTimeout: String = "2s") throws -> RunningProcess {
        try RunningProcess(wrapper + [Binaries.overseerd, "--ready", "notify", "--log-format", "json",
                                      "--control-socket", scratch.file("control.sock"), "--stop-timeout", stopTimeout] + extra
                               + ["-l", "quic=udp:127.0.0.1:0", "--", Binaries.testChild],
                           environment: ["OTC_SERVE": "udp", "OTC_READY_AFTER_MS": "0",
                                         // A drain that lasts until the test ends it (SIGKILL to the old generation).
                                         "OTC_TERM_DRAIN_MS": "600000"])
    }

    /// Stops overseerd as systemd would; the draining children get SIGKILL after the 2 s stop timeout.
    func finish(_ run: RunningProcess) {
        run.signal(SIGTERM)
        _ = try? run.waitForExit(timeout: 20)
    }

    /// Every flow's answers in one round, and what differs from `expected`.
    private func round(_ flows: [Flow], expect expected: (Int) -> Answer) -> [String] {
        var wrong: [String] = []
        for (index, flow) in flows.enumerated() {
            let answer = flow.exchange()
            if answer != expected(index) {
                wrong.append("flow \(index): \(answer.map(String.init(describing:)) ?? "no answer"), expected \(expected(index))")
            }
        }
        return wrong
    }

    func status(_ scratch: ScratchDirectory) throws -> String {
        try RunningProcess([Binaries.overseerd, "status", "--control-socket", scratch.file("control.sock")]).waitForExitWithOutput().1
    }

    /// Asks `status` until it says `text`: flows are counted on a thread, at most once a second,
    /// so an answer may carry the count before the last one.
    private func waitForStatus(_ scratch: ScratchDirectory, containing text: String, timeout: Double = 15) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            last = try status(scratch)
            if last.contains(text) { return }
            usleep(100_000)
        }
        throw HarnessError("status never said \"\(text)\" within \(timeout)s; last:\n\(last)")
    }

    @Test func fiftyFlowsStayWithTheirGenerationAcrossARestart() throws {
        guard try UDPFlowSupport.steeringAvailable("UDPFlowSessionTests") else { return }
        let scratch = ScratchDirectory()
        let run = try overseerd([], scratch: scratch)
        defer { finish(run) }
        let port = try run.listenerPort("quic")
        _ = try run.waitForEvent(.udpFlowsSteered)
        let first = try run.waitForEvent(.generationReady, generation: 1)
        let old = (0..<50).map { _ in Flow(port: port) }
        for count in 1...3 {
            let wrong = round(old) { _ in Answer(generation: 1, count: count) }
            #expect(wrong.isEmpty, "before the restart: \(wrong.prefix(5))")
        }
        run.signal(SIGUSR2)
        _ = try run.waitForEvent(.restartSucceeded, generation: 2, after: first.mark)
        // Generation 1 drains: its 50 flows keep reaching it, new flows go to 2.
        let fresh = (0..<10).map { _ in Flow(port: port) }
        for step in 1...3 {
            let wrong = round(old) { _ in Answer(generation: 1, count: 3 + step) }
            #expect(wrong.isEmpty, "during the drain: \(wrong.prefix(5))")
            let wrongNew = round(fresh) { _ in Answer(generation: 2, count: step) }
            #expect(wrongNew.isEmpty, "new flows: \(wrongNew.prefix(5))")
        }
        try waitForStatus(scratch, containing: "udp quic (127.0.0.1:\(port)): steered, flows: generation 1: 50, generation 2: 10")
        // Generation 1 ends: its flows' next datagrams go to generation 2 (which counts them from 1).
        let started = try run.waitForEvent(.generationStarted, generation: 1)
        kill(try #require(started.pid), SIGKILL)
        _ = try run.waitForEvent(anyOf: [.generationStopped, .generationExited], generation: 1)
        for count in 1...2 {
            let wrong = round(old) { _ in Answer(generation: 2, count: count) }
            #expect(wrong.isEmpty, "after generation 1 ended: \(wrong.prefix(5))")
        }
        try waitForStatus(scratch, containing: "steered, flows: generation 2: 60")
    }

    /// A re-exec of overseerd keeps the program, its table and the sockets: no flow notices,
    /// and the next restart still keeps the old generation's flows with it.
    @Test func aReexecKeepsEveryFlow() throws {
        guard try UDPFlowSupport.steeringAvailable("UDPFlowSessionTests") else { return }
        let scratch = ScratchDirectory()
        let run = try overseerd(["--reexec-signal", "HUP"], scratch: scratch)
        defer { finish(run) }
        let port = try run.listenerPort("quic")
        let ready = try run.waitForEvent(.generationReady, generation: 1)
        let flows = (0..<20).map { _ in Flow(port: port) }
        #expect(round(flows) { _ in Answer(generation: 1, count: 1) }.isEmpty)
        run.signal(SIGHUP)
        let tookOver = try run.waitForEvent(.tookOver, after: ready.mark)
        for count in 2...3 {
            let wrong = round(flows) { _ in Answer(generation: 1, count: count) }
            #expect(wrong.isEmpty, "after the re-exec: \(wrong.prefix(5))")
        }
        #expect(run.events(.udpFlowsShared).isEmpty)
        try waitForStatus(scratch, containing: "udp quic (127.0.0.1:\(port)): steered, flows: generation 1: 20")
        run.signal(SIGUSR2)
        _ = try run.waitForEvent(.restartSucceeded, generation: 2, after: tookOver.mark)
        let fresh = (0..<5).map { _ in Flow(port: port) }
        #expect(round(flows) { _ in Answer(generation: 1, count: 4) }.isEmpty, "old flows after the restart")
        #expect(round(fresh) { _ in Answer(generation: 2, count: 1) }.isEmpty, "new flows after the restart")
    }

    /// Today's mode, for the figure: the same session with one shared socket.
    @Test func withSharedFlowsTheOldGenerationsFlowsGoAstray() throws {
        let scratch = ScratchDirectory()
        let run = try overseerd(["--udp-flows", "shared"], scratch: scratch)
        defer { finish(run) }
        let port = try run.listenerPort("quic")
        let first = try run.waitForEvent(.generationReady, generation: 1)
        let old = (0..<50).map { _ in Flow(port: port) }
        #expect(round(old) { _ in Answer(generation: 1, count: 1) }.isEmpty)
        run.signal(SIGUSR2)
        _ = try run.waitForEvent(.restartSucceeded, generation: 2, after: first.mark)
        // Both generations read the one socket: whichever reads first gets a datagram.
        var astray = 0
        for step in 1...3 {
            for flow in old where flow.exchange()?.generation != 1 { astray += 1 }
            _ = step
        }
        print("UDP flows, --udp-flows shared: \(astray) of 150 datagrams of generation 1's flows reached generation 2 during its drain")
        #expect(try status(scratch).contains("udp quic (127.0.0.1:\(port)): shared"))
        #expect(run.events(.udpFlowsShared).isEmpty, "shared was asked for: no warning")
    }

    /// Without CAP_BPF and CAP_SYS_ADMIN: one warning naming the cause, and the shared socket serves.
    @Test func withoutCapBPFOneWarningAndTheSharedSocket() throws {
        let scratch = ScratchDirectory()
        let root = getuid() == 0
        let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }
        if root, setpriv == nil {
            if ProcessInfo.processInfo.environment["CI"] == "true" { throw HarnessError("CI=true, but setpriv (util-linux) is missing") }
            print("skipping withoutCapBPFOneWarningAndTheSharedSocket: no setpriv to drop CAP_BPF")
            return
        }
        let wrapper = root ? [setpriv!, "--bounding-set", "-bpf,-sys_admin", "--inh-caps", "-bpf,-sys_admin"] : []
        let run = try overseerd([], scratch: scratch, wrapper: wrapper)
        defer { finish(run) }
        let port = try run.listenerPort("quic")
        let warning = try run.waitForEvent(.udpFlowsShared)
        #expect(warning.level == "warning")
        #expect(warning.message.contains("CAP_BPF") && warning.message.contains("quic"), "\(warning.message)")
        _ = try run.waitForEvent(.generationReady, generation: 1)
        #expect(Flow(port: port).exchange() == Answer(generation: 1, count: 1))
        #expect(run.events(.udpFlowsShared).count == 1)
        #expect(try status(scratch).contains("udp quic (127.0.0.1:\(port)): shared ("))
    }
}

import Foundation
import Glibc
import OverseerCore
import OverseerTestSupport
import Testing

/// A real HTTP/3 server and client (aioquic): one QUIC connection making a
/// request every 50 ms across 5 restarts. The old generations drain for a minute
/// (longer than the test), so the connection's generation 1 lives throughout.
@Suite(.serialized) struct HTTP3RestartTests {
    struct Outcome: CustomStringConvertible {
        let requests: Int
        let failed: Int
        let connections: Int
        let generations: [String: Int]
        let slowest: Int
        let overHundredMS: Int
        var description: String {
            "\(requests) requests, \(failed) failed, \(connections) connection(s), answered by \(generations), \(overHundredMS) over 100 ms, slowest \(slowest) ms"
        }
    }

    private func session(_ extra: [String]) throws -> Outcome? {
        guard let python = try Aioquic.python.get() else { return nil }
        let scratch = ScratchDirectory()
        try Aioquic.prepare(in: scratch.path, python: python)
        let run = try RunningProcess([Binaries.overseerd, "--ready", "notify", "--log-format", "json", "--control-socket", "none",
                                      "--stop-timeout", "60s"] + extra
                                     + ["-l", "h3=udp:127.0.0.1:0", "--"] + Aioquic.pythonCommand(python)
                                     + [scratch.file("server.py"), scratch.file("cert.pem"), scratch.file("key.pem")],
                                     environment: ["H3_DRAIN_SECONDS": "60"])
        defer {
            // The drains outlast the test: end the generations, then overseerd.
            for started in run.events(.generationStarted) { if let pid = started.pid { kill(pid, SIGKILL) } }
            run.signal(SIGTERM)
            _ = try? run.waitForExit(timeout: 20)
        }
        let port = try run.listenerPort("h3")
        var mark = try run.waitForEvent(.generationReady, generation: 1, timeout: 60).mark
        let client = try RunningProcess(Aioquic.pythonCommand(python) + [scratch.file("client.py"), String(port)], stdinPipe: true)
        _ = try client.waitForLine(containing: "connected", in: .stdout, timeout: 30)
        // Five requests answered (or failed) after each restart: the connection is used across all of them.
        var requests = 0
        func waitForRequests() throws {
            requests += 5
            _ = try client.waitForLine(containing: "request ", in: .stdout, after: requests, timeout: 60)
        }
        try waitForRequests()
        for restart in 1...5 {
            run.signal(SIGUSR2)
            mark = try run.waitForEvent(.restartSucceeded, generation: restart + 1, after: mark, timeout: 60).mark
            try waitForRequests()
        }
        client.closeStdin()
        let line = try client.waitForLine(containing: "requests", in: .stdout, timeout: 30)
        _ = try client.waitForExit(timeout: 10)
        guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let requests = object["requests"] as? Int, let failed = object["failed"] as? Int,
              let connections = object["connections"] as? Int, let generations = object["generations"] as? [String: Int],
              let slowest = object["max_ms"] as? Int, let over = object["over_100ms"] as? Int else {
            throw HarnessError("client said \(line)")
        }
        return Outcome(requests: requests, failed: failed, connections: connections, generations: generations,
                       slowest: slowest, overHundredMS: over)
    }

    @Test func oneQUICConnectionKeepsWorkingAcrossFiveRestarts() throws {
        guard try UDPFlowSupport.steeringAvailable("HTTP3RestartTests") else { return }
        guard let outcome = try session([]) else { return }
        print("HTTP/3 across 5 restarts, --udp-flows steered: \(outcome)")
        #expect(outcome.failed == 0, "\(outcome)")
        #expect(outcome.connections == 1, "\(outcome)")
        #expect(outcome.generations.keys.sorted() == ["1"], "\(outcome)")
        #expect(outcome.requests >= 10, "\(outcome)")
    }

    /// Today's mode, for the figure: the generations share the socket, and the
    /// new ones, knowing nothing of the connection, take some of its datagrams
    /// (how many depends on which process reads first, and QUIC sends a lost
    /// packet again: 5 of 30 requests failed over 6 connections in one run, none
    /// failed in another, so the loss is printed, not asserted).
    @Test func withSharedFlowsTheFigureOfTodaysMode() throws {
        guard let outcome = try session(["--udp-flows", "shared"]) else { return }
        print("HTTP/3 across 5 restarts, --udp-flows shared: \(outcome)")
        #expect(outcome.requests >= 30, "\(outcome)")
    }
}

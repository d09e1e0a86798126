import Foundation
import Glibc
import OverseerCore
import OverseerTestSupport
import Testing

/// `--udp-flows steered` with `--workers`: every worker of a generation shares
/// that generation's UDP socket (as they share a TCP listener), so flows stay
/// with their generation across a rolling restart, and a worker started later
/// (a crashed one replaced) gets the same socket, not one of its own.
@Suite(.serialized) struct UDPFlowWorkerTests {
    typealias Flow = UDPFlowSessionTests.Flow

    /// The socket behind fd 3 of `pid` ("socket:[INODE]").
    func socket(of pid: Int32) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/3")
    }

    /// The generations answering `flows`, one each (nil: no answer).
    func generations(_ flows: [Flow]) -> [Int?] { flows.map { $0.exchange()?.generation } }

    @Test func workersOfAGenerationShareItsSocketThroughARollAndAReplacement() throws {
        guard try UDPFlowSupport.steeringAvailable("UDPFlowWorkerTests") else { return }
        let scratch = ScratchDirectory()
        let run = try RunningProcess(
            [Binaries.overseerd, "--ready", "notify", "--log-format", "json", "--workers", "2",
             "--control-socket", scratch.file("control.sock"), "--stop-timeout", "2s",
             "-l", "quic=udp:127.0.0.1:0", "--", Binaries.testChild],
            environment: ["OTC_SERVE": "udp", "OTC_READY_AFTER_MS": "0",
                          // The old generation drains until the test ends.
                          "OTC_TERM_DRAIN_MS": "600000"])
        defer {
            run.signal(SIGTERM)
            _ = try? run.waitForExit(timeout: 20)
        }
        let port = try run.listenerPort("quic")
        _ = try run.waitForEvent(.udpFlowsSteered)
        let first = try run.waitForEvent(.generationReady, generation: 1)
        let firstWorkers = run.events(.workerStarted, generation: 1).compactMap(\.pid)
        #expect(firstWorkers.count == 2)
        let firstSockets = Set(firstWorkers.map(socket(of:)))
        #expect(firstSockets.count == 1 && firstSockets.first! != nil, "generation 1's workers: \(firstSockets)")

        let old = (0 ..< 20).map { _ in Flow(port: port) }
        #expect(generations(old).allSatisfy { $0 == 1 })

        run.signal(SIGUSR2)
        let rolled = try run.waitForEvent(.restartSucceeded, generation: 2, after: first.mark)
        let secondWorkers = run.events(.workerStarted, generation: 2).compactMap(\.pid)
        #expect(secondWorkers.count == 2)
        let secondSockets = Set(secondWorkers.map(socket(of:)))
        #expect(secondSockets.count == 1 && secondSockets.isDisjoint(with: firstSockets),
                "generation 2's workers: \(secondSockets), generation 1's: \(firstSockets)")
        let fresh = (0 ..< 10).map { _ in Flow(port: port) }
        #expect(generations(old).allSatisfy { $0 == 1 }, "generation 1 drains: its flows stay with it")
        #expect(generations(fresh).allSatisfy { $0 == 2 }, "new flows go to generation 2")

        // A worker of generation 2 killed: its replacement gets generation 2's socket.
        kill(secondWorkers[0], SIGKILL)
        let replacement = try run.waitForEvent(.workerStarted, generation: 2, after: rolled.mark)
        let replacementPID = try #require(replacement.pid)
        _ = try run.waitForEvent(.workerReady, generation: 2, after: replacement.mark)
        #expect(socket(of: replacementPID) == secondSockets.first!, "the replacement's socket")
        // The other original worker goes too: the flows of generation 2 stay on its socket, held by the replacement.
        kill(secondWorkers[1], SIGKILL)
        _ = try run.waitForEvent(.workerStarted, generation: 2, after: replacement.mark)
        #expect(generations(fresh).allSatisfy { $0 == 2 })
        #expect(generations(old).allSatisfy { $0 == 1 })
        #expect(run.events(.udpFlowsError).isEmpty, "\(run.events(.udpFlowsError))")
    }
}

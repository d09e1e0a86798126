#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// `overseerd health` and `GET /healthz`, `GET /readyz` on `--metrics-listen`
/// give one judgement in each state: starting, serving, restarting, the
/// serving child gone, rolling back. Probes of a container platform; they do
/// not need overseerd to be PID 1.
@Suite struct HealthProbeTests {
    /// The answers of the three probes, which must agree.
    struct Answers {
        let healthy: Bool
        let line: String
    }

    static func probe(_ container: Container, port: UInt16) throws -> Answers {
        let (exit, stdout, stderr) = try container.control(["health"])
        let line = (exit == .exited(0) ? stdout : stderr).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(exit == .exited(0) || exit == .exited(1), "\(exit) \(stderr)")
        #expect(!line.contains("\n"), "one line: \(line)")
        for path in ["/healthz", "/readyz"] {
            let answer = try HTTPClient.get(port: port, path: path)
            #expect(answer.status == (exit == .exited(0) ? 200 : 503), "\(path): \(answer.status) while health said \(exit)")
            #expect(line.hasSuffix(answer.body.trimmingCharacters(in: .whitespacesAndNewlines)), "\(path): \(answer.body) vs \(line)")
        }
        return Answers(healthy: exit == .exited(0), line: line)
    }

    static func metricsPort(_ container: Container) throws -> UInt16 {
        let message = try container.event("metrics_endpoint")["message"] as? String ?? ""
        // "metrics at http://127.0.0.1:41234/metrics"
        guard let port = message.split(separator: ":").last?.split(separator: "/").first.flatMap({ UInt16($0) }) else {
            throw HarnessError("no port in \"\(message)\"")
        }
        return port
    }

    @Test func startingServingRestartingAndChildGone() throws {
        let deployment = try UpgradeTests.Deployment()
        deployment.configureNextGeneration("OTC_READY_AFTER_MS=4000\n")
        let container = try Container(
            ["--ready", "notify", "--metrics-listen", "127.0.0.1:0", "-l", "127.0.0.1:0", "--", deployment.program],
            environment: ["OTC_SERVE": "1", "OTC_CONFIG": deployment.configPath], asInit: false)
        let port = try Self.metricsPort(container)

        let starting = try Self.probe(container, port: port)
        #expect(!starting.healthy && starting.line.hasSuffix("starting: generation 1 is not ready yet"), "\(starting.line)")

        let first = try container.event("generation_ready", generation: 1)["pid"] as? Int
        let serving = try Self.probe(container, port: port)
        #expect(serving.healthy && serving.line == "serving: generation 1 (pid \(first ?? -1)) is ready", "\(serving.line)")

        deployment.configureNextGeneration("OTC_READY_AFTER_MS=4000\n")
        #expect(try container.control(["restart"]).exit == .exited(0))
        try container.event("generation_started", generation: 2)
        let restarting = try Self.probe(container, port: port)
        #expect(restarting.healthy && restarting.line.hasPrefix("restarting: generation 1 (pid \(first ?? -1)) serves, generation 2 is starting"), "\(restarting.line)")

        // The serving child is killed while generation 2 is not ready yet: nothing serves.
        kill(Int32(first ?? 0), SIGKILL)
        try container.event("generation_exited", generation: 1)
        let gone = try Self.probe(container, port: port)
        #expect(!gone.healthy && gone.line.hasSuffix("no serving generation: the serving child exited; generation 2 is starting"), "\(gone.line)")

        try container.event("generation_ready", generation: 2)
        #expect(try Self.probe(container, port: port).healthy)
        container.run.signal(SIGTERM)
        _ = try container.run.waitForExit()
    }

    @Test func rollingBack() throws {
        let deployment = try UpgradeTests.Deployment()
        let container = try Container(
            ["--ready", "notify", "--fetch", deployment.deployPath, "--probation", "10s", "--metrics-listen", "127.0.0.1:0",
             "-l", "127.0.0.1:0", "--", deployment.program],
            environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0", "OTC_CONFIG": deployment.configPath], asInit: false)
        let port = try Self.metricsPort(container)
        try container.event("generation_ready", generation: 1)
        // Generation 2 serves, then exits during its probation; the previous binary's generation 3 takes 4 s to be ready.
        deployment.configureNextGeneration("OTC_EXIT_AFTER_MS=1500\nOTC_EXIT_CODE=4\n")
        try deployment.deploy(deployment.variant("crashes"))
        try container.event("restart_succeeded", generation: 2)
        deployment.configureNextGeneration("OTC_READY_AFTER_MS=4000\n")
        try container.event("probation_failed", generation: 2)
        try container.event("generation_started", generation: 3)
        let rollingBack = try Self.probe(container, port: port)
        #expect(!rollingBack.healthy && rollingBack.line.hasSuffix("rolling back: a new binary failed its probation; generation 3 starts on the previous binary"), "\(rollingBack.line)")
        try container.event("generation_ready", generation: 3)
        #expect(try Self.probe(container, port: port).healthy)
        container.run.signal(SIGTERM)
        _ = try container.run.waitForExit()
    }
}

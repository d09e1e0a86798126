#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// `--workers N` with real processes: N test children on one listening socket,
/// rolling restarts and upgrades under load, a worker killed, a program that
/// cannot run at all.
@Suite struct WorkerTests {
    final class Pool: @unchecked Sendable {
        let deployment: UpgradeTests.Deployment
        var socket: String { deployment.scratch.file("control.sock") }
        let run: RunningProcess
        let port: UInt16

        /// overseerd with `--workers workers` over a copy of the test child, upgrades from `deployment.deployPath`.
        init(workers: Int, options: [String] = [], config: String = "") throws {
            deployment = try UpgradeTests.Deployment()
            deployment.configureNextGeneration(config)
            run = try RunningProcess.overseerd(
                ["--ready", "notify", "--log-format", "json", "--workers", String(workers), "--control-socket", deployment.scratch.file("control.sock"),
                 "--fetch", deployment.deployPath, "-l", "127.0.0.1:0"] + options + ["--", deployment.program],
                environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0", "OTC_CONFIG": deployment.configPath])
            port = try run.listenerPort()
            try run.waitForEvent(.generationReady, generation: 1)
        }

        func control(_ arguments: [String]) throws -> (ProcessExit, String, String) {
            try RunningProcess([Binaries.overseerd] + arguments + ["--control-socket", socket]).waitForExitWithOutput()
        }

        /// `status --json`'s slots.
        func slots() throws -> [[String: Any]] {
            let (exit, text, error) = try control(["status", "--json"])
            guard exit == .exited(0) else { throw HarnessError("status failed: \(exit) \(error)") }
            let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            return object?["workers"] as? [[String: Any]] ?? []
        }

        deinit {
            run.signal(SIGTERM)
            _ = try? run.waitForExit()
        }
    }

    /// Samples the ready workers from `status --json` every 50 ms until stopped.
    final class ReadySampler: @unchecked Sendable {
        private let lock = NSLock()
        private var samples: [Int] = []
        private var running = true
        private let done = DispatchSemaphore(value: 0)

        init(_ pool: Pool) {
            Thread.detachNewThread { [self] in
                while lock.withLock({ running }) {
                    if let slots = try? pool.slots() {
                        let ready = slots.count { $0["state"] as? String == "ready" }
                        lock.withLock { samples.append(ready) }
                    }
                    usleep(50000)
                }
                done.signal()
            }
        }

        func stop() -> [Int] {
            lock.withLock { running = false }
            done.wait()
            return lock.withLock { samples }
        }
    }

    @Test func everyWorkerServesOnTheSharedSocketWithItsNumberAndItsOwnPid() throws {
        let pool = try Pool(workers: 3)
        let slots = try pool.slots()
        #expect(slots.map { $0["worker"] as? Int } == [0, 1, 2])
        #expect(slots.allSatisfy { $0["state"] as? String == "ready" && $0["generation"] as? Int == 1 })
        let pids = Set(slots.compactMap { $0["pid"] as? Int })
        #expect(pids.count == 3)
        // Each serves (its LISTEN_PID is its own, or it would not take the socket) and says which worker it is.
        var seen: [Int32: String] = [:]
        // The kernel gives each accept to one waiting worker, whichever it wakes: on a busy machine one
        // worker may win a few hundred in a row, so ask until each has answered (or 30 s have passed).
        let deadline = Date().addingTimeInterval(30)
        while seen.count < 3, Date() < deadline {
            let response = try HTTPClient.get(port: pool.port)
            if let pid = response.pid { seen[pid] = response.headers["x-worker"] }
        }
        #expect(Set(seen.keys.map(Int.init)) == pids, "accepts spread over every worker: \(seen)")
        for slot in slots {
            let pid = Int32(slot["pid"] as! Int)
            #expect(seen[pid] == String(slot["worker"] as! Int))
        }
        let (_, metrics, _) = try pool.control(["metrics"])
        #expect(metrics.contains("overseerd_workers{state=\"ready\"} 3"))
        #expect(metrics.contains("overseerd_worker_restarts_total{worker=\"2\"} 0"))
    }

    @Test func rollingRestartsAndUpgradesUnderLoadLoseNothingAndKeepNMinusOneReady() throws {
        let pool = try Pool(workers: 4, options: ["--stop-timeout", "5s"])
        let load = LoadLoop(port: pool.port, connections: 4)
        load.waitUntilSucceeded(50)
        let sampler = ReadySampler(pool)
        for round in 1 ... 6 {
            let (exit, text, _) = try pool.control(["restart", "--wait"])
            #expect(exit == .exited(0), "restart \(round): \(text)")
        }
        for release in 1 ... 2 {
            let mark = pool.run.events().last?.mark ?? .start
            try pool.deployment.deploy(pool.deployment.variant("v\(release)"))
            try pool.run.waitForEvent(.upgradeSucceeded, after: mark, timeout: 60)
        }
        let samples = sampler.stop()
        let result = load.stop()
        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        #expect(result.succeeded > 100)
        #expect(samples.count > 10)
        #expect(samples.min() ?? 0 >= 3, "ready workers sampled: \(samples)")
        let slots = try pool.slots()
        #expect(Set(slots.compactMap { $0["generation"] as? Int }).count == 1)
        #expect(slots.allSatisfy { $0["state"] as? String == "ready" })
    }

    @Test func aReleaseWhoseThirdWorkerFailsLeavesEveryWorkerOnTheOldBinary() throws {
        let pool = try Pool(workers: 4, options: ["--stop-timeout", "5s", "--log-level", "debug"])
        let old = try sha256sum(pool.deployment.program)
        let release = pool.deployment.variant("fails")
        let releasePath = pool.deployment.scratch.file("release")
        try pool.deployment.write(release, to: releasePath)
        let new = try sha256sum(releasePath)
        pool.deployment.configureNextGeneration("OTC_FAIL_WORKER=2\nOTC_FAIL_BINARY=\(new.prefix(16))\nOTC_EXIT_CODE=9\n")
        let load = LoadLoop(port: pool.port, connections: 2)
        load.waitUntilSucceeded(20)
        let mark = pool.run.events().last?.mark ?? .start
        try pool.deployment.deploy(release)
        try pool.run.waitForEvent(.restartFailed, after: mark, timeout: 60)
        let rolledBack = try pool.run.waitForEvent(.upgradeRolledBack, after: mark, timeout: 60)
        #expect(rolledBack.binary == old)
        // Slots 0 and 1 had been taken by the release: given back to generation 1.
        try pool.run.waitForEvent(.workerReady, generation: 1, after: rolledBack.mark, occurrence: 2, timeout: 30)
        try pool.run.waitForEvent(.generationStopped, generation: 2, after: mark, timeout: 30)
        let result = load.stop()
        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        let slots = try pool.slots()
        #expect(slots.allSatisfy { $0["generation"] as? Int == 1 && $0["binary_id"] as? String == old && $0["state"] as? String == "ready" }, "\(slots)")
        #expect(try sha256sum(pool.deployment.program) == old)
    }

    @Test func aWorkerKilledUnderLoadIsReplacedWhileTheOthersServe() throws {
        let pool = try Pool(workers: 3)
        let load = LoadLoop(port: pool.port, connections: 2)
        load.waitUntilSucceeded(20)
        let victim = try #require(try pool.slots().first { $0["worker"] as? Int == 1 }?["pid"] as? Int)
        let mark = pool.run.events().last?.mark ?? .start
        kill(Int32(victim), SIGKILL)
        try pool.run.waitForEvent(.workerExited, generation: 1, after: mark)
        try pool.run.waitForEvent(.workerRestartScheduled, after: mark)
        let replaced = try pool.run.waitForEvent(.workerReady, generation: 1, after: mark)
        let result = load.stop()
        // A request the killed worker had accepted may fail; the service does not.
        #expect(result.failures.count <= 2, "\(result.failures)")
        #expect(result.succeeded > 20)
        let slot = try #require(try pool.slots().first { $0["worker"] as? Int == 1 })
        #expect(slot["pid"] as? Int != victim)
        #expect(slot["restarts"] as? Int == 1)
        #expect(slot["state"] as? String == "ready", "\(replaced)")
        #expect(try HTTPClient.get(port: pool.port).status == 200)
    }

    @Test func aProgramThatCrashesAtStartInEveryWorkerEndsOverseerdWithItsStatus() throws {
        let scratch = ScratchDirectory()
        let run = try RunningProcess.overseerd(
            ["--ready", "notify", "--log-format", "json", "--workers", "3", "--control-socket", "none", "-l", "127.0.0.1:0", "--", Binaries.testChild],
            environment: ["OTC_EXIT": "7", "OTC_REPORT": scratch.file("report")])
        #expect(try run.waitForExit() == .exited(7))
        #expect(run.hasLogged(.workerStarted))
    }

    @Test func everyWorkerCrashingAfterServingWithinTheWindowEndsOverseerdAsTheLastOneDid() throws {
        // The first workers exit with 5 on SIGTERM (sent here, not by overseerd: an exit nobody asked for);
        // their replacements read the next configuration: each exits with 5 just after READY=1.
        let pool = try Pool(workers: 2, options: ["--worker-crash-window", "30s"], config: "OTC_TERM_EXIT=5\n")
        pool.deployment.configureNextGeneration("OTC_EXIT_AFTER_MS=50\nOTC_EXIT_CODE=5\nOTC_TERM_EXIT=5\n")
        let pids = try pool.slots().compactMap { $0["pid"] as? Int }
        #expect(pids.count == 2)
        for pid in pids { kill(Int32(pid), SIGTERM) }
        try pool.run.waitForEvent(.workersCrashed, timeout: 30)
        #expect(try pool.run.waitForExit(timeout: 30) == .exited(5))
    }

    @Test func badWorkerFlagsAreOneLineUsageErrors() throws {
        for (flags, words) in [(["--workers", "0"], "bad --workers 0"), (["--workers", "x"], "bad --workers \"x\""),
                               (["--workers", "2", "--roll-batch", "3"], "bad --roll-batch 3"),
                               (["--workers", "2", "--worker-crash-window", "0s"], "--worker-crash-window must be longer than 0")] {
            let run = try RunningProcess.overseerd(flags + ["--", Binaries.testChild])
            #expect(try run.waitForExit() == .exited(64), "\(flags)")
            #expect(run.stderrText.contains(words), "\(flags): \(run.stderrText)")
            #expect(run.stderrText.split(separator: "\n").count == 1, "\(run.stderrText)")
        }
    }

    @Test func restartWaitAnswersAFailedRollAndEveryWorkerStays() throws {
        let pool = try Pool(workers: 3, options: ["--stop-timeout", "5s", "--log-level", "debug"])
        let before = try pool.slots().compactMap { $0["pid"] as? Int }
        // Worker 1 of the next generation exits at once, the retry too: the roll fails.
        pool.deployment.configureNextGeneration("OTC_FAIL_WORKER=1\nOTC_EXIT_CODE=3\n")
        let (exit, text, error) = try pool.control(["restart", "--wait"])
        #expect(exit == .exited(1), "\(text) \(error)")
        #expect((text + error).contains("worker 1 exited with status 3 before it was ready"), "\(text) \(error)")
        // Slot 0 had been taken by generation 2: given back to generation 1 (a new process of it).
        pool.deployment.configureNextGeneration("")
        // Generation 2's last worker goes once slot 0 has a ready worker of generation 1 again.
        try pool.run.waitForEvent(.generationStopped, generation: 2)
        let slots = try pool.slots()
        #expect(slots.allSatisfy { $0["generation"] as? Int == 1 && $0["state"] as? String == "ready" }, "\(slots)")
        #expect(Set(slots.compactMap { $0["pid"] as? Int }).intersection(before).count >= 2)
        #expect(try HTTPClient.get(port: pool.port).status == 200)
    }

    static let node = Examples.which("node")

    /// A Node.js server (one thread: the reason for --workers) on overseerd's socket, two workers, one rolling restart.
    @Test(.enabled(if: node != nil, "node is not on PATH: the Node.js workers test is skipped (Debian package nodejs)"))
    func nodeServersShareTheSocketAndRoll() throws {
        let scratch = ScratchDirectory()
        let script = scratch.file("server.js")
        try Data("""
        const http = require('http');
        if (process.env.LISTEN_PID !== String(process.pid)) { console.error('not my sockets'); process.exit(2); }
        http.createServer((req, res) => {
          res.setHeader('X-Pid', String(process.pid));
          res.setHeader('X-Worker', process.env.OVERSEER_WORKER);
          res.end('hello\\n');
        }).listen({ fd: 3 });
        """.utf8).write(to: URL(fileURLWithPath: script))
        let socket = scratch.file("control.sock")
        let run = try RunningProcess.overseerd(["--ready", "delay:300ms", "--log-format", "json", "--workers", "2",
                                                "--control-socket", socket, "-l", "127.0.0.1:0", "--", Self.node!, script])
        let port = try run.listenerPort()
        try run.waitForEvent(.generationReady, generation: 1)
        func workers() throws -> [Int32: String] {
            var seen: [Int32: String] = [:]
            let deadline = Date().addingTimeInterval(30)
            while seen.count < 2, Date() < deadline {
                let response = try HTTPClient.get(port: port)
                if let pid = response.pid { seen[pid] = response.headers["x-worker"] }
            }
            return seen
        }
        let first = try workers()
        #expect(Set(first.values) == ["0", "1"], "\(first)")
        let (exit, text, _) = try RunningProcess([Binaries.overseerd, "restart", "--wait", "--control-socket", socket]).waitForExitWithOutput()
        #expect(exit == .exited(0), "\(text)")
        let second = try workers()
        #expect(Set(second.values) == ["0", "1"])
        #expect(Set(second.keys).isDisjoint(with: Set(first.keys)))
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

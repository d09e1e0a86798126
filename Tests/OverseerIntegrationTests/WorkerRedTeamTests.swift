#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// `--workers N` attacked with real processes: what a hostile or unlucky
/// worker does to overseerd's bookkeeping (found by the red team of issue 26).
@Suite struct WorkerRedTeamTests {
    /// A worker that leaves a process in its group and exits: the leftovers are
    /// that worker's, of its generation, not of a "generation" numbered as the
    /// worker's instance (before the fix: "generation 2 (pid …) exited and left …").
    @Test func leftoversOfAWorkerNameItsGenerationAndSlot() throws {
        let script = """
        if [ "$OVERSEER_WORKER" = 1 ]; then sleep 300 & sleep 1; exit 4; fi
        exec sleep 300
        """
        let run = try RunningProcess.overseerd(
            ["--workers", "2", "--ready", "delay:100ms", "--stop-timeout", "1s", "--log-format", "json",
             "-l", "127.0.0.1:0", "--", "/bin/sh", "-c", script])
        defer { run.signal(SIGTERM); _ = try? run.waitForExit() }
        try run.waitForEvent(.generationReady, generation: 1)
        let found = try run.waitForEvent(.leftoversFound)
        #expect(found.generation == 1, "\(found)")
        #expect(found.message.contains("worker 1 of generation 1"), "\(found)")
        let killed = try run.waitForEvent(.leftoversKilled)
        #expect(killed.generation == 1, "\(killed)")
        #expect(killed.message.contains("worker 1 of generation 1"), "\(killed)")
    }
}

extension WorkerRedTeamTests {
    /// With `--ready delay:`, a worker is ready once the delay has passed:
    /// `status` says so, with how long (before the fix: "starting" for every
    /// ready worker and no `ready_seconds`, since only READY=1 set the time).
    @Test func statusShowsWorkersReadyByDelayAsReady() throws {
        let scratch = ScratchDirectory()
        let socket = scratch.file("control.sock")
        let run = try RunningProcess.overseerd(
            ["--workers", "2", "--ready", "delay:100ms", "--log-format", "json", "--control-socket", socket,
             "-l", "127.0.0.1:0", "--", "/bin/sh", "-c", "exec sleep 300"])
        defer { run.signal(SIGTERM); _ = try? run.waitForExit() }
        try run.waitForEvent(.generationReady, generation: 1)
        let (exit, text, error) = try RunningProcess([Binaries.overseerd, "status", "--control-socket", socket]).waitForExitWithOutput()
        #expect(exit == .exited(0), "\(error)")
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("worker ") }
        #expect(lines.count == 2, "\(text)")
        for line in lines { #expect(line.contains("ready for"), "\(line)") }
        let (_, json, _) = try RunningProcess([Binaries.overseerd, "status", "--json", "--control-socket", socket]).waitForExitWithOutput()
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        let slots = object?["workers"] as? [[String: Any]] ?? []
        #expect(slots.count == 2)
        for slot in slots { #expect(slot["ready_seconds"] is Int, "\(slot)") }
    }
}

extension WorkerRedTeamTests {
    /// An upgrade every worker takes (all READY, the roll done), then worker 2
    /// crashes within the probation: the trial failed, the last good binary is
    /// put back and every slot rolls onto it.
    @Test func aWorkerOfTheReleaseCrashingWithinProbationRollsEverySlotBack() throws {
        let pool = try WorkerTests.Pool(workers: 4, options: ["--probation", "60s", "--stop-timeout", "5s"])
        let old = try sha256sum(pool.deployment.program)
        let release = pool.deployment.variant("crashes-later")
        let mark = pool.run.events().last?.mark ?? .start
        try pool.deployment.deploy(release)
        let succeeded = try pool.run.waitForEvent(.restartSucceeded, after: mark, timeout: 60)
        let slots = try pool.slots()
        #expect(slots.allSatisfy { $0["binary_id"] as? String != old }, "\(slots)")
        guard let victim = slots.first(where: { $0["worker"] as? Int == 2 })?["pid"] as? Int else {
            Issue.record("no worker 2: \(slots)"); return
        }
        kill(Int32(victim), SIGKILL)
        let rolledBack = try pool.run.waitForEvent(.upgradeRolledBack, after: succeeded.mark, timeout: 60)
        #expect(rolledBack.binary == old)
        try pool.run.waitForEvent(.restartSucceeded, after: rolledBack.mark, timeout: 60)
        let after = try pool.slots()
        #expect(after.count == 4)
        #expect(after.allSatisfy { $0["binary_id"] as? String == old && $0["state"] as? String == "ready" }, "\(after)")
        #expect(try sha256sum(pool.deployment.program) == old)
    }
}

extension WorkerRedTeamTests {
    /// `--watchdog relay` with workers: systemd is to see a worker that hangs,
    /// as it sees one child that hangs. Worker 0 pings, worker 1 never does
    /// (hung): overseerd must not vouch for the service (before the fix it
    /// relayed worker 0's pings alone, and worker 1 hung unseen forever).
    /// When both ping, the pings are relayed.
    @Test(arguments: [false, true]) func theWatchdogRelayVouchesOnlyWhenEveryReadyWorkerPings(everyWorkerPings: Bool) throws {
        let scratch = ScratchDirectory()
        let address = scratch.file("notify")
        let receiver = try DatagramReceiver(address)
        let script = """
        import os, socket, time
        a = os.environ["NOTIFY_SOCKET"]; a = "\\0" + a[1:] if a.startswith("@") else a
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b"READY=1", a)
        while True:
            if os.environ["OVERSEER_WORKER"] == "0" or os.environ["EVERY"] == "1": s.sendto(b"WATCHDOG=1", a)
            time.sleep(0.05)
        """
        let run = try RunningProcess.overseerd(
            ["--workers", "2", "--watchdog", "relay", "--ready", "notify", "--log-format", "json", "--", "/usr/bin/python3", "-c", script],
            environment: ["NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000", "EVERY": everyWorkerPings ? "1" : "0"])
        defer { run.signal(SIGTERM); _ = try? run.waitForExit() }
        _ = try receiver.collect(until: { $0.hasPrefix("READY=1") })
        var pings = 0
        let deadline = Date().addingTimeInterval(0.8)
        while Date() < deadline {
            if let message = try? receiver.next(timeout: max(0.01, deadline.timeIntervalSinceNow)), message == "WATCHDOG=1" { pings += 1 }
        }
        if everyWorkerPings {
            #expect(pings >= 3, "pings at half of 200ms while every worker pings, got \(pings)")
        } else {
            #expect(pings == 0, "worker 1 never pinged: systemd must not hear the service is well")
        }
    }
}

extension WorkerRedTeamTests {
    /// Two workers that recycle themselves together (status 0 after 300 ms of
    /// serving) are started again, over and over, and overseerd stays (before
    /// the fix it gave up within the first round and exited 0).
    @Test func workersRecyclingThemselvesTogetherKeepOverseerdRunning() throws {
        let run = try RunningProcess.overseerd(
            ["--workers", "2", "--ready", "notify", "--log-format", "json", "-l", "127.0.0.1:0", "--", Binaries.testChild],
            environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0", "OTC_EXIT_AFTER_MS": "300", "OTC_EXIT_CODE": "0"])
        defer { run.signal(SIGTERM); _ = try? run.waitForExit() }
        try run.waitForEvent(.generationReady, generation: 1)
        try run.waitForEvent(.workerExited, occurrence: 6, timeout: 30)
        #expect(!run.hasLogged(.workersCrashed))
        let ready = try run.waitForEvent(.workerReady, occurrence: 6, timeout: 30)
        #expect(ready.generation == 1)
        #expect(kill(run.pid, 0) == 0, "overseerd gave up on workers that recycle themselves")
    }
}

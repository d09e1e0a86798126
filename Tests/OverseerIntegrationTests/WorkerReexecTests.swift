#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// `overseerd reexec` with `--workers N`: overseerd's own binary upgraded in
/// place, every worker handed over to the new image, serving throughout; the
/// new image then rolls, replaces and refuses as the old one did.
@Suite struct WorkerReexecTests {
    final class Installed: @unchecked Sendable {
        let overseerd: SelfUpgradeTests.Installed
        let scratch = ScratchDirectory()
        var configPath: String { scratch.file("child.conf") }
        let run: RunningProcess
        let port: UInt16

        /// The installed copy of overseerd with `--workers workers` over the test child (its log in JSON).
        init(workers: Int, options: [String] = []) throws {
            overseerd = try SelfUpgradeTests.Installed()
            FileManager.default.createFile(atPath: scratch.file("child.conf"), contents: Data())
            run = try RunningProcess([overseerd.binary, "--control-socket", overseerd.socket, "--ready", "notify", "--log-format", "json",
                                      "--workers", String(workers), "--stop-timeout", "5s", "-l", "127.0.0.1:0"] + options
                                         + ["--", Binaries.testChild],
                                     environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0", "OTC_CONFIG": scratch.file("child.conf")])
            port = try run.listenerPort()
            try run.waitForEvent(.generationReady, generation: 1)
        }

        func control(_ arguments: [String]) throws -> (ProcessExit, String, String) { try overseerd.control(arguments) }

        /// `status --json`'s slots.
        func slots() throws -> [[String: Any]] {
            let (exit, text, error) = try control(["status", "--json"])
            guard exit == .exited(0) else { throw HarnessError("status failed: \(exit) \(error)") }
            let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            return object?["workers"] as? [[String: Any]] ?? []
        }

        func pids() throws -> [Int32] { try slots().compactMap { ($0["pid"] as? Int).map(Int32.init) } }

        deinit {
            run.signal(SIGTERM)
            _ = try? run.waitForExit()
        }
    }

    @Test func reexecHandsEveryWorkerOverUnderLoadThenRollsAndReplacesInTheNewImage() throws {
        let pool = try Installed(workers: 3)
        let before = try pool.pids()
        #expect(before.count == 3)
        let load = LoadLoop(port: pool.port, connections: 3)
        load.waitUntilSucceeded(60)
        try pool.overseerd.upgrade()
        let mark = pool.run.events().last?.mark ?? .start

        let (exit, text, error) = try pool.control(["reexec"])
        #expect(exit == .exited(0), "\(text) \(error)")
        #expect(text.contains("its 3 workers (pids \(before.map(String.init).joined(separator: ", ")))"), "\(text)")
        let tookOver = try pool.run.waitForEvent(.tookOver, after: mark)
        #expect(tookOver.generation == 1)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pool.run.pid)/exe") == pool.overseerd.binary,
                "the same overseerd pid runs the new file")
        // The same three workers serve on, each still overseerd's, none started again.
        load.waitUntilSucceeded(load.succeeded + 150, within: 20)
        let result = load.stop()
        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        #expect(result.pids == Set(before), "every worker served across the exec, no other: \(result.pids)")
        let slots = try pool.slots()
        #expect(slots.compactMap { ($0["pid"] as? Int).map(Int32.init) } == before)
        #expect(slots.allSatisfy { $0["state"] as? String == "ready" && $0["generation"] as? Int == 1 && $0["restarts"] as? Int == 0 })
        #expect(!pool.run.hasLogged(.workerStarted, after: mark))
        for pid in before { #expect(parent(of: pid) == pool.run.pid, "worker \(pid) is still overseerd's child") }
        let (_, metrics, _) = try pool.control(["metrics"])
        #expect(metrics.contains("overseerd_workers{state=\"ready\"} 3"))

        // A rolling restart in the new image, under load: every slot onto generation 2.
        let rollLoad = LoadLoop(port: pool.port, connections: 3)
        rollLoad.waitUntilSucceeded(30)
        let (restart, restartText, _) = try pool.control(["restart", "--wait"])
        #expect(restart == .exited(0), "\(restartText)")
        let rolled = try pool.slots()
        #expect(rolled.allSatisfy { $0["generation"] as? Int == 2 && $0["state"] as? String == "ready" }, "\(rolled)")
        #expect(Set(rolled.compactMap { ($0["pid"] as? Int).map(Int32.init) }).isDisjoint(with: before))
        let rollResult = rollLoad.stop()
        #expect(rollResult.failures.isEmpty, "\(rollResult.failures.prefix(5))")
        for pid in before { try waitUntilGone(pid) }

        // A worker killed in the new image is replaced in its slot.
        let killMark = pool.run.events().last?.mark ?? .start
        let victim = try #require(rolled.first { $0["worker"] as? Int == 1 }?["pid"] as? Int)
        kill(Int32(victim), SIGKILL)
        try pool.run.waitForEvent(.workerRestartScheduled, after: killMark)
        try pool.run.waitForEvent(.workerReady, generation: 2, after: killMark)
        let replaced = try #require(try pool.slots().first { $0["worker"] as? Int == 1 })
        #expect(replaced["pid"] as? Int != victim)
        #expect(replaced["restarts"] as? Int == 1)
        #expect(replaced["state"] as? String == "ready")
        #expect(try HTTPClient.get(port: pool.port).status == 200)
        #expect(pool.run.exit == nil)
    }

    @Test func reexecDuringARollIsRefusedWithOneLineAndTheRollGoesOn() throws {
        let pool = try Installed(workers: 2)
        let before = try pool.pids()
        // The next generation's workers take 2 s to be ready: the roll is under way for a while.
        FileManager.default.createFile(atPath: pool.configPath, contents: Data("OTC_READY_AFTER_MS=2000\n".utf8))
        let mark = pool.run.events().last?.mark ?? .start
        #expect(try pool.control(["restart"]).0 == .exited(0))
        try pool.run.waitForEvent(.rollStarted, generation: 2, after: mark)
        let (exit, text, error) = try pool.control(["reexec"])
        #expect(exit == .exited(1))
        #expect((text + error).contains("a rolling restart to generation 2 is under way (a roll is not handed over); try again when it has ended"),
                "\(text) \(error)")
        let refused = try pool.run.waitForEvent(.reexecRefused, after: mark)
        #expect(!refused.description.contains("\n"))
        #expect(!pool.run.hasLogged(.tookOver, after: mark))
        try pool.run.waitForEvent(anyOf: [.generationReady, .restartSucceeded], generation: 2, after: mark, timeout: 30)
        for pid in before { try waitUntilGone(pid) }
        // Settled: now it goes through.
        let settled = try pool.pids()
        #expect(try pool.control(["reexec"]).0 == .exited(0))
        try pool.run.waitForEvent(.tookOver, after: mark)
        #expect(try pool.pids() == settled)
    }

    @Test func reexecSignalWithWorkersIsAccepted() throws {
        let pool = try Installed(workers: 2, options: ["--reexec-signal", "USR1"])
        let before = try pool.pids()
        let mark = pool.run.events().last?.mark ?? .start
        pool.run.signal(SIGUSR1)
        let tookOver = try pool.run.waitForEvent(.tookOver, after: mark)
        #expect(tookOver.generation == 1)
        #expect(try pool.pids() == before)
        #expect(try HTTPClient.get(port: pool.port).status == 200)
    }

    /// An image that does not say it takes over workers (an older overseerd, here a
    /// wrapper answering --check-configuration as one did) is not executed: every worker would be lost.
    @Test func reexecIntoAnImageThatCannotTakeWorkersIsRefusedBeforeTheExec() throws {
        let pool = try Installed(workers: 2)
        let before = try pool.pids()
        let real = pool.scratch.file("overseerd.real")
        try FileManager.default.copyItem(atPath: Binaries.overseerd, toPath: real)
        let wrapper = pool.overseerd.scratch.file(".wrapper")
        try Data("""
            #!/bin/sh
            if [ "$1" = --check-configuration ]; then
                "\(real)" "$@" >/dev/null || exit $?
                echo "overseerd 0.9.0: the command line is valid (takes over: metrics, output, binary-life, udp-flows)"
                exit 0
            fi
            exec "\(real)" "$@"

            """.utf8).write(to: URL(fileURLWithPath: wrapper))
        chmod(wrapper, 0o755)
        guard rename(wrapper, pool.overseerd.binary) == 0 else { throw HarnessError("rename: errno \(errno)") }
        let mark = pool.run.events().last?.mark ?? .start
        let (exit, text, error) = try pool.control(["reexec"])
        #expect(exit == .exited(1))
        #expect((text + error).contains("cannot take over the workers of --workers 2 (an older overseerd); every worker would be lost"),
                "\(text) \(error)")
        try pool.run.waitForEvent(.reexecRefused, after: mark)
        #expect(!pool.run.hasLogged(.tookOver, after: mark))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pool.run.pid)/exe").hasSuffix(" (deleted)"),
                "this image goes on")
        #expect(try pool.pids() == before)
        #expect(try HTTPClient.get(port: pool.port).status == 200)
    }

    /// The new file is a wrapper that kills worker 1 itself: while its
    /// --check-configuration runs (the old image sees the exit, and either
    /// refuses at its second look or has replaced the worker by then), or once
    /// it is the re-executed image, before the real overseerd takes over (which
    /// finds the worker dead, reaps it and replaces it). The wrapper waits with
    /// shell builtins only: a shell that started a process would reap the worker.
    @Test func aWorkerThatDiesDuringTheCheckOrTheExecIsNotLost() throws {
        for during in ["check", "exec"] {
            let pool = try Installed(workers: 2)
            let before = try pool.pids()
            let victim = before[1]
            let real = pool.scratch.file("overseerd.real")
            try FileManager.default.copyItem(atPath: Binaries.overseerd, toPath: real)
            let wrapper = pool.overseerd.scratch.file(".wrapper")
            try Data("""
                #!/bin/sh
                case "$1" in --check-configuration) when=check ;; *) when=exec ;; esac
                if [ $when = \(during) ]; then
                    kill -KILL \(victim)
                    while [ -e /proc/\(victim)/status ]; do
                        state=
                        while read -r key value rest; do [ "$key" = State: ] && state=$value; done < /proc/\(victim)/status
                        [ "$state" = Z ] && break
                    done
                fi
                exec "\(real)" "$@"

                """.utf8).write(to: URL(fileURLWithPath: wrapper))
            chmod(wrapper, 0o755)
            guard rename(wrapper, pool.overseerd.binary) == 0 else { throw HarnessError("rename: errno \(errno)") }
            let mark = pool.run.events().last?.mark ?? .start
            let (exit, text, error) = try pool.control(["reexec"])
            if exit == .exited(0) {
                try pool.run.waitForEvent(.tookOver, after: mark)
            } else {
                #expect(during == "check", "\(text) \(error)")
                #expect((text + error).contains("worker 1 is being replaced after it exited; try again once it is ready"), "\(text) \(error)")
                #expect(!pool.run.hasLogged(.tookOver, after: mark))
            }
            print("worker killed during the \(during): \(exit == .exited(0) ? "re-executed" : "refused")")
            // Either way the slot gets a new worker, the other one serves on.
            try pool.run.waitForEvent(.workerReady, generation: 1, after: mark)
            let slots = try pool.slots()
            #expect(slots.count == 2 && slots.allSatisfy { $0["state"] as? String == "ready" }, "\(during): \(slots)")
            #expect(slots.first { $0["worker"] as? Int == 0 }?["pid"] as? Int == Int(before[0]), "\(during)")
            let replaced = try #require(slots.first { $0["worker"] as? Int == 1 })
            #expect(replaced["pid"] as? Int != Int(victim), "\(during)")
            #expect(replaced["restarts"] as? Int == 1, "\(during)")
            #expect(try HTTPClient.get(port: pool.port).status == 200)
            #expect(pool.run.exit == nil)
        }
    }

    /// The parent pid of `pid`, from /proc.
    private func parent(of pid: Int32) -> Int32? {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        return status.split(separator: "\n").first { $0.hasPrefix("PPid:") }.flatMap { Int32($0.dropFirst(5).trimmingCharacters(in: .whitespaces)) }
    }

    private func waitUntilGone(_ pid: Int32, within seconds: Double = 15) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while kill(pid, 0) == 0 || errno != ESRCH {
            guard Date() < deadline else { throw HarnessError("pid \(pid) still there after \(seconds) s") }
            usleep(10_000)
        }
    }
}

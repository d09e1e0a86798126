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

import Glibc
@testable import OverseerCore
import Testing

/// Rows found by the red team of issue 26.
@Suite struct WorkerPoolRedTeamTests {
    /// A roll's batch whose first worker cannot start fails the roll; the
    /// batch's other workers, whose spawns were already under way, then fail
    /// too. Their slots still have their serving worker: nothing crashed there,
    /// nothing is to be started again, no restart is counted (before the fix:
    /// "worker 2 starts again in 100ms" and restarts 1 on slots 1 and 2).
    @Test func theRestOfAFailedRollsBatchIsNoCrashOfTheSlotsItWasToTake() {
        var world = PoolWorld(workers: 3, batch: 3)
        world.supervision(.binaryLife(.started(identified: "A")))
        world.supervision(.started)
        world.allReady()
        world.spawnFails = true
        world.supervision(.restartRequested(reason: "SIGUSR2"))
        #expect(world.spawns(of: 2) == [0, 1, 2])
        #expect(world.logged(.restartFailed))
        #expect(world.slotView == ["1r", "1r", "1r"])
        #expect(world.pool.slots.map(\.restarts) == [0, 0, 0])
        #expect(!world.logged(.workerRestartScheduled), "\(world.logs.map(\.message))")
        #expect(!world.timers.keys.contains { if case .replace = $0 { true } else { false } }, "\(world.timers)")
        #expect(world.pool.slots.allSatisfy { $0.recentCrash == nil })
    }
}

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

    /// Workers that recycle themselves (exit 0 after serving, as gunicorn's
    /// max_requests does) under an even load do so at nearly the same time.
    /// Two of two exiting 0 before the first one's replacement is ready is no
    /// program that cannot run: before the fix overseerd gave up and exited 0,
    /// which systemd's Restart=on-failure takes as the service ending.
    @Test func workersThatExitZeroAfterServingAreReplacedNotGivenUpOn() {
        var world = PoolWorld(workers: 2)
        world.supervision(.binaryLife(.started(identified: "A")))
        world.supervision(.started)
        world.allReady()
        let workers = world.pool.workers(of: 1).map(\.instance)
        world.crash(workers[0], .exited(0))
        world.fire(.replace(worker: 0))
        world.crash(workers[1], .exited(0))
        #expect(!world.logged(.workersCrashed), "\(world.logs.map(\.message))")
        #expect(world.exited == nil)
        #expect(!world.pool.supervision.isShuttingDown)
        world.fire(.replace(worker: 1))
        world.readyUntilSettled()
        #expect(world.slotView == ["1r", "1r"])
        #expect(world.pool.slots.map(\.restarts) == [1, 1])
    }

    /// Exiting 0 before being ready is still a failure to start: every slot
    /// doing so within the window ends overseerd, as before.
    @Test func workersThatExitZeroBeforeReadyStillCountAsCrashes() {
        var world = PoolWorld(workers: 2)
        world.supervision(.binaryLife(.started(identified: "A")))
        world.supervision(.started)
        world.allReady()
        for worker in 0 ..< 2 {
            world.crash(world.pool.workers(of: 1).first { $0.worker == worker }!.instance, .exited(3))
            world.fire(.replace(worker: worker))
        }
        for worker in 0 ..< 2 {
            if let starting = world.pool.workers(of: 1).first(where: { $0.worker == worker && $0.state == .starting }) {
                world.crash(starting.instance, .exited(0))
            }
        }
        #expect(world.logged(.workersCrashed))
        world.stoppedOnesExit()
        #expect(world.exited != nil)
    }
}

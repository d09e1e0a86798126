@testable import OverseerCore
import Testing

@Suite struct WatchdogHealthTests {
    @Test func theRelayGoesByTheWorkerThatPingedLeastRecently() {
        #expect(WatchdogHealth.leastRecentPing([5, 3, 9]) == 3)
        #expect(WatchdogHealth.leastRecentPing([5, nil, 9]) == nil, "a worker that never pinged is not vouched for")
        #expect(WatchdogHealth.leastRecentPing([]) == nil)
        let interval = Duration.milliseconds(200)
        let now: Int64 = 1_000_000_000
        let fresh = now - 50_000_000, stale = now - 500_000_000
        #expect(WatchdogHealth.isHealthy(relay: true, now: now, interval: interval,
                                         servingLastPing: WatchdogHealth.leastRecentPing([fresh, fresh]), childrenAlive: true))
        #expect(!WatchdogHealth.isHealthy(relay: true, now: now, interval: interval,
                                          servingLastPing: WatchdogHealth.leastRecentPing([fresh, stale]), childrenAlive: true),
                "one hung worker: systemd sees it")
    }
}

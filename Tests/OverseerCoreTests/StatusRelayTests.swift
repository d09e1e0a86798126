import OverseerCore
import Testing

/// STATUS= changes: one a second per generation, the last one always said.
@Suite struct StatusRelayTests {
    let second: Int64 = 1_000_000_000

    @Test func firstChangeIsShownAndARepeatIsNothing() {
        var relay = StatusRelay()
        #expect(relay.received("a", generation: 1, now: 0) == .show("a", skipped: 0))
        #expect(relay.received("a", generation: 1, now: 10) == .unchanged)
        // Another generation has its own pace.
        #expect(relay.received("x", generation: 2, now: 10) == .show("x", skipped: 0))
    }

    @Test func aFloodIsHeldAndItsLastChangeFlushedWithTheCount() {
        var relay = StatusRelay()
        _ = relay.received("s0", generation: 1, now: 0)
        #expect(relay.received("s1", generation: 1, now: second / 4) == .hold(flushAfter: .nanoseconds(3 * second / 4)))
        for index in 2 ... 100 {
            #expect(relay.received("s\(index)", generation: 1, now: second / 2) == .hold(flushAfter: nil))
        }
        #expect(relay.received("s100", generation: 1, now: second / 2) == .unchanged)
        #expect(relay.flush(generation: 1, now: second) == .show("s100", skipped: 99))
        #expect(relay.flush(generation: 1, now: second) == .unchanged)
        // The interval starts again at the flush.
        #expect(relay.received("t", generation: 1, now: second + 1) == .hold(flushAfter: .nanoseconds(second - 1)))
    }

    @Test func aChangeAfterTheIntervalIsShownAndCountsAHeldOne() {
        var relay = StatusRelay()
        _ = relay.received("a", generation: 1, now: 0)
        _ = relay.received("b", generation: 1, now: 1)
        // The flush was late (a busy loop): the next change comes first and replaces "b".
        #expect(relay.received("c", generation: 1, now: 2 * second) == .show("c", skipped: 1))
        #expect(relay.flush(generation: 1, now: 2 * second) == .unchanged)
    }

    @Test func backToTheShownTextWhileOneIsHeldIsStillAChange() {
        var relay = StatusRelay()
        _ = relay.received("a", generation: 1, now: 0)
        _ = relay.received("b", generation: 1, now: 1)
        #expect(relay.received("a", generation: 1, now: 2) == .hold(flushAfter: nil))
        #expect(relay.flush(generation: 1, now: second) == .show("a", skipped: 1))
    }

    @Test func forgottenGenerationStartsAfresh() {
        var relay = StatusRelay()
        _ = relay.received("a", generation: 1, now: 0)
        _ = relay.received("b", generation: 1, now: 1)
        relay.forget(generation: 1)
        #expect(relay.flush(generation: 1, now: 2) == .unchanged)
        #expect(relay.received("c", generation: 1, now: 3) == .show("c", skipped: 0))
    }
}

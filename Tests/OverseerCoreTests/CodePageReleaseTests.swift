import OverseerCore
import Testing

/// When code pages are dropped: after quiet following work, never for nothing.
@Suite struct CodePageReleaseTests {
    @Test func workArmsOnceAndTheFirstQuietReleases() {
        var policy = CodePageRelease()
        let result1 = policy.worked()
        #expect(result1)
        let result2 = policy.worked()
        #expect(!result2, "already armed")
        let result3 = policy.quietEnded(faults: 5000)
        #expect(result3)
        policy.released(faults: 5010)
        #expect(!policy.isArmed)
    }

    @Test func aQuietWithoutNewFaultsReleasesNothing() {
        var policy = CodePageRelease(minimumFaults: 16)
        _ = policy.worked()
        _ = policy.quietEnded(faults: 100)
        policy.released(faults: 100)
        // A watchdog ping: a wake, a few faults at most.
        let result4 = policy.worked()
        #expect(result4)
        let result5 = policy.quietEnded(faults: 110)
        #expect(!result5)
        // A restart: hundreds of pages faulted back.
        let result6 = policy.worked()
        #expect(result6)
        let result7 = policy.quietEnded(faults: 600)
        #expect(result7)
    }

    @Test func atRestNothingArmsItself() {
        var policy = CodePageRelease()
        _ = policy.worked()
        _ = policy.quietEnded(faults: 1)
        policy.released(faults: 1)
        // Only work arms the timer; the timer's own firing is not work (the caller does not report it).
        #expect(!policy.isArmed)
    }
}

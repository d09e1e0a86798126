import OverseerCore
import Testing

/// `ServiceHealth`: the judgement `overseerd health`, `/healthz` and `/readyz` share, state by state.
@Suite struct ServiceHealthTests {
    @Test func eachStateHasItsAnswer() {
        let cases: [(ServiceHealth.Facts, Bool, String)] = [
            (.init(candidate: 1), false, "starting: generation 1 is not ready yet"),
            (.init(serving: (1, 40)), true, "serving: generation 1 (pid 40) is ready"),
            (.init(serving: (1, 40), candidate: 2), true, "restarting: generation 1 (pid 40) serves, generation 2 is starting"),
            (.init(candidate: 3, rollingBack: true), false, "rolling back: a new binary failed its probation; generation 3 starts on the previous binary"),
            (.init(rollingBack: true), false, "rolling back: a new binary failed its probation; the previous binary is being put back"),
            (.init(candidate: 2), false, "no serving generation: the serving child exited; generation 2 is starting"),
            (.init(), false, "no serving generation: the child is gone; overseerd is stopping"),
            (.init(serving: (4, 41), servingStopping: true), false, "stopping: overseerd is stopping its generations"),
        ]
        for (facts, healthy, line) in cases {
            let health = ServiceHealth(facts)
            #expect(health.healthy == healthy, "\(line)")
            #expect(health.line == line)
        }
    }

    @Test func aServingGenerationIsHealthyEvenWhileARollbackIsRecorded() {
        // The previous binary serves again: the rollback is over for the probe.
        #expect(ServiceHealth(.init(serving: (5, 50), rollingBack: true)).healthy)
    }
}

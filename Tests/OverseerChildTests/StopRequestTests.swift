#if canImport(Glibc)
import Glibc
#endif
@testable import OverseerChild
import Testing

/// Stop signals turned into an async sequence and callbacks.
@Suite(.serialized) struct StopRequestTests {
    /// A value set from another thread, waited for with a deadline.
    final class Box: @unchecked Sendable {
        private let lock = Lock()
        private var values: [StopRequest] = []
        func append(_ value: StopRequest) { lock.withLock { values.append(value) } }
        var all: [StopRequest] { lock.withLock { values } }
        func wait(count: Int, seconds: Double = 5) -> [StopRequest] {
            var spec = timespec()
            clock_gettime(CLOCK_MONOTONIC, &spec)
            let deadline = Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9 + seconds
            while all.count < count {
                clock_gettime(CLOCK_MONOTONIC, &spec)
                if Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9 > deadline { break }
                sched_yield()
            }
            return all
        }
    }

    @Test func signalArrivesAsSequenceElementAndCallback() async throws {
        let called = Box()
        OverseerChild.onStopRequest(signals: [SIGUSR1]) { called.append($0) }
        let requests = OverseerChild.stopRequests(signals: [SIGUSR1])
        kill(getpid(), SIGUSR1)
        var iterator = requests.makeAsyncIterator()
        let first = await iterator.next()
        #expect(first == StopRequest(signal: SIGUSR1))
        #expect(first?.description == "SIGUSR1")
        #expect(called.wait(count: 1) == [StopRequest(signal: SIGUSR1)])
        #expect(OverseerChild.isStopRequested)

        // A later subscriber learns of the stop at once: it is a state, not an event.
        let late = Box()
        OverseerChild.onStopRequest(signals: [SIGUSR1]) { late.append($0) }
        #expect(late.all == [StopRequest(signal: SIGUSR1)])
        let waited = await OverseerChild.waitForStopRequest(signals: [SIGUSR1])
        #expect(waited.signal == SIGUSR1)

        // Every further signal is delivered too.
        kill(getpid(), SIGUSR1)
        #expect(await iterator.next() == StopRequest(signal: SIGUSR1))
        #expect(called.wait(count: 2).count == 2)
    }

    @Test func otherSignalsAreNotStopRequests() async {
        let called = Box()
        OverseerChild.onStopRequest(signals: [SIGUSR2]) { called.append($0) }
        OverseerChild.onStopRequest(signals: [SIGHUP]) { _ in }
        kill(getpid(), SIGHUP)
        kill(getpid(), SIGUSR2)
        let seen = called.wait(count: 1)
        #expect(seen == [StopRequest(signal: SIGUSR2)])
    }
}

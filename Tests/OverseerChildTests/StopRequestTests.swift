#if canImport(Glibc)
import Glibc
#endif
@testable import OverseerChild
import OverseerTestSupport
import Testing

/// Stop signals turned into an async sequence and callbacks.
///
/// The signals go to the library's signal thread only (`pthread_kill`), not to
/// the whole test process: a process-directed signal could land on any thread
/// of the runner and interrupt another suite's blocking call with EINTR.
/// ChildLibraryTests sends real process-directed stop signals to a program
/// whose other threads all block them.
@Suite(.serialized, .timeLimit(.minutes(1))) struct StopRequestTests {
    /// Sends `signal` to the thread that relays the stop signals.
    static func signalRelay(_ signal: Int32) {
        precondition(pthread_kill(try! SignalRelay.shared().thread, signal) == 0)
    }

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
                usleep(1000)
            }
            return all
        }
    }

    @Test func signalArrivesAsSequenceElementAndCallback() async throws {
        try await onDedicatedThread {
            let called = Box()
            try OverseerChild.onStopRequest(signals: [SIGUSR1]) { called.append($0) }
            let requests = try OverseerChild.stopRequests(signals: [SIGUSR1])
            Self.signalRelay(SIGUSR1)
            var iterator = requests.makeAsyncIterator()
            let first = await iterator.next()
            #expect(first == StopRequest(signal: SIGUSR1))
            #expect(first?.description == "SIGUSR1")
            #expect(called.wait(count: 1) == [StopRequest(signal: SIGUSR1)])
            #expect(OverseerChild.isStopRequested)

            // A later subscriber learns of the stop at once: it is a state, not an event.
            let late = Box()
            try OverseerChild.onStopRequest(signals: [SIGUSR1]) { late.append($0) }
            #expect(late.all == [StopRequest(signal: SIGUSR1)])
            let waited = try await OverseerChild.waitForStopRequest(signals: [SIGUSR1])
            #expect(waited.signal == SIGUSR1)

            // Every further signal is delivered too.
            Self.signalRelay(SIGUSR1)
            #expect(await iterator.next() == StopRequest(signal: SIGUSR1))
            #expect(called.wait(count: 2).count == 2)
        }
    }

    @Test func otherSignalsAreNotStopRequests() async throws {
        try await onDedicatedThread {
            let called = Box()
            try OverseerChild.onStopRequest(signals: [SIGUSR2]) { called.append($0) }
            try OverseerChild.onStopRequest(signals: [SIGHUP]) { _ in }
            Self.signalRelay(SIGHUP)
            Self.signalRelay(SIGUSR2)
            let seen = called.wait(count: 1)
            #expect(seen == [StopRequest(signal: SIGUSR2)])
        }
    }

    /// The relay thread's blocked signals from /proc (bit N-1 is signal N), found by its name.
    static func relayBlockedSignals() -> UInt64? {
        guard let tid = shellOutput("grep -lx \(SignalRelay.threadName) /proc/\(getpid())/task/*/comm")
                .split(separator: "/").dropLast().last,
              let file = fopen("/proc/self/task/\(tid)/status", "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 256)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            let line = decodeCString(buffer)
            if line.hasPrefix("SigBlk:") {
                return UInt64(String(line.dropFirst("SigBlk:".count).filter { !$0.isWhitespace }), radix: 16)
            }
        }
        return nil
    }

    @Test func relayThreadUnblocksOnlyTheSubscribedSignals() async throws {
        try await onDedicatedThread {
            let called = Box()
            try OverseerChild.onStopRequest(signals: [SIGWINCH]) { called.append($0) }
            let bit = { (signal: Int32) in UInt64(1) << UInt64(signal - 1) }
            var blocked = Self.relayBlockedSignals() ?? .max
            for _ in 0 ..< 500 where blocked & bit(SIGWINCH) != 0 {
                usleep(10000)
                blocked = Self.relayBlockedSignals() ?? .max
            }
            #expect(blocked & bit(SIGWINCH) == 0, "a subscribed signal is unblocked on the relay thread")
            #expect(blocked & bit(SIGCHLD) != 0, "a signal nobody subscribed to stays blocked there")
            #expect(blocked & bit(SIGALRM) != 0)
            Self.signalRelay(SIGWINCH)
            #expect(called.wait(count: 1) == [StopRequest(signal: SIGWINCH)])
        }
    }
}

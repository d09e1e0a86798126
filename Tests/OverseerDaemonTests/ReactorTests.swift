import Glibc
@testable import OverseerDaemon
import OverseerSystem
import SystemPackage
import Testing

/// The event loop alone: fds and deadlines, no process.
@Suite struct ReactorTests {
    @Test func deadlinesFireInOrderAndCancelledOnesNever() throws {
        let reactor = try Reactor()
        var fired: [String] = []
        _ = reactor.schedule(after: .milliseconds(30)) { fired.append("late") }
        let cancelled = reactor.schedule(after: .milliseconds(10)) { fired.append("cancelled") }
        _ = reactor.schedule(after: .milliseconds(1)) { fired.append("early") }
        reactor.cancel(cancelled)
        try run(reactor) { fired.count == 2 }
        #expect(fired == ["early", "late"])
    }

    @Test func aHandlerMayCancelADeadlineDueInTheSameRound() throws {
        let reactor = try Reactor()
        var fired: [String] = []
        var second: DeadlineToken?
        _ = reactor.schedule(after: .milliseconds(1)) {
            fired.append("first")
            reactor.cancel(second)
        }
        second = reactor.schedule(after: .milliseconds(2)) { fired.append("second") }
        usleep(5_000)
        _ = reactor.schedule(after: .milliseconds(20)) { fired.append("third") }
        try run(reactor) { fired.contains("third") }
        #expect(fired == ["first", "third"])
    }

    @Test func watchedFdCallsItsHandlerUntilUnwatched() throws {
        let reactor = try Reactor()
        let (read, write) = try Posix.pipe()
        defer {
            Posix.close(read)
            Posix.close(write)
        }
        var calls = 0
        var token: WatchToken?
        token = try reactor.watch(read) {
            calls += 1
            var buffer = [UInt8](repeating: 0, count: 16)
            _ = try? Posix.read(read, into: &buffer)
            if calls == 2, let token { reactor.unwatch(token) }
        }
        try Posix.writeAll(write, [1])
        try run(reactor) { calls == 1 }
        try Posix.writeAll(write, [2])
        try run(reactor) { calls == 2 }
        // Unwatched: a third byte calls nobody.
        try Posix.writeAll(write, [3])
        var waited = false
        _ = reactor.schedule(after: .milliseconds(50)) { waited = true }
        try run(reactor) { waited }
        #expect(calls == 2)
    }
}

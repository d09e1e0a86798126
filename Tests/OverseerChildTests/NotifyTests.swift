#if canImport(Glibc)
import Glibc
#endif
@testable import OverseerChild
import Testing

/// sd_notify messages over real datagram sockets, path and abstract, with the
/// credentials the kernel attaches.
@Suite struct NotifyTests {
    @Test(arguments: [false, true])
    func eachMessageArrivesWithOurPid(abstract: Bool) throws {
        let receiver = NotifyReceiver(abstract: abstract)
        let child = OverseerChild(environment: ["NOTIFY_SOCKET": receiver.address], ownPID: getpid())
        let expectations: [(Bool, String)] = [
            (child.ready(), "READY=1"),
            (child.status("warming up: 3/4"), "STATUS=warming up: 3/4"),
            (child.watchdog(), "WATCHDOG=1"),
            (child.stopping(), "STOPPING=1"),
        ]
        for (sent, text) in expectations {
            #expect(sent)
            let message = try #require(receiver.receive())
            #expect(message.text == text)
            #expect(message.pid == getpid(), "SCM_CREDENTIALS names the sender")
        }
    }

    @Test func reloadingCarriesTheMonotonicClock() throws {
        let receiver = NotifyReceiver(abstract: true)
        let child = OverseerChild(environment: ["NOTIFY_SOCKET": receiver.address], ownPID: getpid())
        let before = OverseerChild.monotonicMicroseconds()
        #expect(child.reloading())
        let after = OverseerChild.monotonicMicroseconds()
        let message = try #require(receiver.receive())
        let lines = message.text.split(separator: "\n")
        #expect(lines.first == "RELOADING=1")
        let usec = try #require(lines.last.flatMap { $0.hasPrefix("MONOTONIC_USEC=") ? UInt64($0.dropFirst(15)) : nil })
        #expect(before <= usec && usec <= after)
        #expect(message.pid == getpid())
    }

    @Test func failuresAreReported() {
        let none = OverseerChild(environment: [:], ownPID: getpid())
        #expect(!none.ready())
        let unset = #expect(throws: OverseerChildError.self) { try none.sendNotification([("READY", "1")]) }
        #expect(unset?.description == "cannot notify: NOTIFY_SOCKET is not set")

        let gone = OverseerChild(environment: ["NOTIFY_SOCKET": "@overseer-child-test-nobody-\(getpid())"], ownPID: getpid())
        #expect(!gone.ready())
        let refused = #expect(throws: OverseerChildError.self) { try gone.sendNotification([("READY", "1")]) }
        #expect(refused?.description.contains("connection refused") == true, "\(String(describing: refused))")
        #expect(refused?.code == .notifyFailed)

        let relative = OverseerChild(environment: ["NOTIFY_SOCKET": "relative/path"], ownPID: getpid())
        let bad = #expect(throws: OverseerChildError.self) { try relative.sendNotification([("READY", "1")]) }
        #expect(bad?.description.contains("neither a path nor @name") == true)
    }
}

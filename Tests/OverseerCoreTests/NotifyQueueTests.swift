import OverseerCore
import OverseerProtocol
import Testing

/// overseerd's messages to systemd while one is being sent: in order, superseded ones dropped.
@Suite struct NotifyQueueTests {
    func item(_ key: String, _ value: String, fd: Int32? = nil) -> NotifyQueue.Item {
        NotifyQueue.Item(NotifyMessage([(key, value)]), fd: fd)
    }

    @Test func anIdleQueueSendsAtOnceAndABusyOneWaits() {
        var queue = NotifyQueue()
        #expect(queue.enqueue(item("READY", "1")) == [item("READY", "1")])
        #expect(queue.isSending)
        #expect(queue.enqueue(item("STATUS", "a")) == nil)
        #expect(queue.sent() == [item("STATUS", "a")])
        #expect(queue.isSending)
        #expect(queue.sent() == nil)
        #expect(!queue.isSending)
        #expect(queue.enqueue(item("STATUS", "b")) == [item("STATUS", "b")])
    }

    @Test func newerStatusAndWatchdogReplaceWaitingOnesAndTheRestKeepsItsOrder() {
        var queue = NotifyQueue()
        _ = queue.enqueue(item("READY", "1"))
        let reloading = NotifyQueue.Item(NotifyMessage([("RELOADING", "1"), ("STATUS", "restarting")]))
        for index in 0 ..< 1000 {
            _ = queue.enqueue(item("WATCHDOG", "1"))
            _ = queue.enqueue(item("STATUS", "s\(index)"))
            if index == 500 { _ = queue.enqueue(reloading) }
        }
        _ = queue.enqueue(item("FDSTORE", "1", fd: 7))
        #expect(queue.sent() == [reloading, item("WATCHDOG", "1"), item("STATUS", "s999"), item("FDSTORE", "1", fd: 7)])
    }
}

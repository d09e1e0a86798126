import OverseerProtocol

/// overseerd's own sd_notify messages to systemd, in order, one batch at a
/// time. sd_notify blocks while systemd's notify socket is full (its queue
/// holds 10 datagrams from every service on the host, and PID 1 reads none
/// during a daemon-reload), so the sending happens off the event loop, and
/// what comes meanwhile waits here: a newer STATUS= replaces a waiting one, a
/// WATCHDOG=1 a waiting one, so a long wait costs a few messages, not a backlog.
public struct NotifyQueue: Sendable {
    public struct Item: Equatable, Sendable {
        public var message: NotifyMessage
        /// An fd passed with the message (FDSTORE=1); it stays open for the daemon's life.
        public var fd: Int32?

        public init(_ message: NotifyMessage, fd: Int32? = nil) {
            self.message = message
            self.fd = fd
        }

        /// A message that only a newer one of its kind supersedes: STATUS= alone, or WATCHDOG=1 alone.
        var supersedableKind: String? {
            guard fd == nil, message.assignments.count == 1, let key = message.assignments.first?.key,
                  key == "STATUS" || key == "WATCHDOG" else { return nil }
            return key
        }
    }

    /// What waits for the batch being sent.
    public private(set) var waiting: [Item] = []
    /// A batch is being sent.
    public private(set) var isSending = false

    public init() {}

    /// `item` is to be sent; returns the batch to send now, or nil when it waits.
    public mutating func enqueue(_ item: Item) -> [Item]? {
        guard isSending else {
            isSending = true
            return [item]
        }
        if let kind = item.supersedableKind {
            waiting.removeAll { $0.supersedableKind == kind }
        }
        waiting.append(item)
        return nil
    }

    /// The batch being sent is done; returns the next one, or nil when none waits.
    public mutating func sent() -> [Item]? {
        guard !waiting.isEmpty else {
            isSending = false
            return nil
        }
        defer { waiting = [] }
        return waiting
    }
}

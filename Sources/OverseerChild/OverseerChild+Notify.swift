import Glibc
import OverseerProtocol

/// The sd_notify(3) protocol, written out: one datagram of newline-separated
/// `KEY=VALUE` lines to the unix socket named by NOTIFY_SOCKET (a path, or
/// `@name` for the abstract namespace).
///
/// Why not libsystemd's `sd_notify`: the protocol is a single `sendto`, and
/// writing it out keeps this library free of a system library that Debian
/// ships only as a shared object (no `libsystemd.a`), that needs
/// `libsystemd-dev` and pkg-config to build against, and that small or static
/// tools would otherwise have to carry. It works the same under overseerd and
/// directly under systemd (`Type=notify`): the kernel attaches our credentials
/// (SCM_CREDENTIALS) on the receiver's side, which is how both tell who sent it.
extension OverseerChild {
    /// Tells overseerd (or systemd) that this process is ready to serve: `READY=1`.
    ///
    /// Under overseerd with `--ready notify`, this is when the previous
    /// generation is told to stop, so send it once the sockets are being
    /// accepted on. Returns false when there is no NOTIFY_SOCKET or sending failed.
    @discardableResult
    public func ready() -> Bool { notify([("READY", "1")]) }

    /// Sets the one-line status shown by overseerd's log and `systemctl status`: `STATUS=…`.
    @discardableResult
    public func status(_ text: String) -> Bool { notify([("STATUS", text)]) }

    /// Says this process is shutting down: `STOPPING=1`. Send it when the stop signal came.
    @discardableResult
    public func stopping() -> Bool { notify([("STOPPING", "1")]) }

    /// A watchdog keep-alive ping: `WATCHDOG=1`. Send it at least every
    /// ``watchdogInterval`` (half of it is customary) when that is set.
    @discardableResult
    public func watchdog() -> Bool { notify([("WATCHDOG", "1")]) }

    /// Says this process is reloading its configuration: `RELOADING=1` with
    /// `MONOTONIC_USEC=` (CLOCK_MONOTONIC in µs), which systemd's
    /// `Type=notify-reload` requires. Send ``ready()`` when the reload is done.
    @discardableResult
    public func reloading() -> Bool {
        notify([("RELOADING", "1"), ("MONOTONIC_USEC", String(Self.monotonicMicroseconds()))])
    }

    /// Sends `assignments` as one datagram. Returns false when there is no
    /// NOTIFY_SOCKET or the message could not be sent; use
    /// ``sendNotification(_:)`` to learn why.
    @discardableResult
    public func notify(_ assignments: [(key: String, value: String)]) -> Bool {
        guard notifySocket != nil else { return false }
        return (try? sendNotification(assignments)) != nil
    }

    /// Sends `assignments` as one datagram, or throws saying what failed:
    /// no NOTIFY_SOCKET, a path that is too long, or the `sendto` error
    /// (ECONNREFUSED when nobody listens there any more).
    public func sendNotification(_ assignments: [(key: String, value: String)]) throws(OverseerChildError) {
        guard let notifySocket else { throw .notifyFailed("NOTIFY_SOCKET is not set") }
        try Self.send(NotifyMessage(assignments).encoded, to: notifySocket)
    }

    /// CLOCK_MONOTONIC in microseconds, as systemd compares MONOTONIC_USEC with its own.
    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    static func send(_ text: String, to socketPath: String) throws(OverseerChildError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        guard let first = path.first, first == UInt8(ascii: "/") || first == UInt8(ascii: "@") else {
            throw .notifyFailed("NOTIFY_SOCKET=\(socketPath) is neither a path nor @name")
        }
        let abstract = first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { throw .notifyFailed("NOTIFY_SOCKET=\(socketPath) is longer than \(capacity - 1) bytes") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (abstract ? 0 : 1))
        let fd = openSocket(AF_UNIX, Int32(SOCK_DGRAM.rawValue))
        guard fd >= 0 else { throw .notifyFailed("socket: \(errnoText(errno))") }
        defer { closeDescriptor(fd) }
        let bytes = Array(text.utf8)
        var sent = -1
        repeat {
            sent = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                    bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), raw, length) }
                }
            }
        } while sent < 0 && errno == EINTR
        guard sent == bytes.count else { throw .notifyFailed("sendto \(socketPath): \(errnoText(errno))") }
    }
}

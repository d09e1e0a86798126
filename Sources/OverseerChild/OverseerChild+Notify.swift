#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import OverseerProtocol

// The sd_notify(3) protocol written out (one datagram to NOTIFY_SOCKET), so
// that the library needs no libsystemd: it works under overseerd and directly
// under systemd alike.
extension OverseerChild {
    /// Tells overseerd (or systemd) that this process is ready to serve.
    @discardableResult
    public func ready() -> Bool { notify([("READY", "1")]) }

    /// Sets the one-line status shown by overseerd and systemctl status.
    @discardableResult
    public func status(_ text: String) -> Bool { notify([("STATUS", text)]) }

    /// Says this process is shutting down.
    @discardableResult
    public func stopping() -> Bool { notify([("STOPPING", "1")]) }

    /// A watchdog keep-alive ping.
    @discardableResult
    public func watchdog() -> Bool { notify([("WATCHDOG", "1")]) }

    /// Sends `assignments` as one datagram. Returns false when there is no
    /// NOTIFY_SOCKET or the message could not be sent.
    @discardableResult
    public func notify(_ assignments: [(key: String, value: String)]) -> Bool {
        guard let notifySocket else { return false }
        return (try? Self.send(NotifyMessage(assignments).encoded, to: notifySocket)) != nil
    }

    static func send(_ text: String, to socketPath: String) throws(OverseerChildError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { throw .notifyFailed(reason: "NOTIFY_SOCKET path too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (abstract ? 0 : 1))
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .notifyFailed(reason: "socket: errno \(errno)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), raw, length) }
            }
        }
        guard sent == bytes.count else { throw .notifyFailed(reason: "sendto \(socketPath): errno \(errno)") }
    }
}

import Foundation
import Glibc
import OverseerSystem

/// What the UDP flow tests share: whether BPF steering can run here, and small
/// UDP clients and receivers over real sockets.
public enum UDPFlowSupport {
    /// Whether this process may load the steering program. When it may not,
    /// says so on one line and returns false; under CI=true that throws.
    public static func steeringAvailable(_ test: String) throws -> Bool {
        do {
            let probe = try UDPSteering(flowTimeout: .seconds(1))
            probe.close()
            return true
        } catch {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                throw HarnessError("CI=true, but BPF steering is not available: \(error)")
            }
            print("skipping \(test): UDP flow steering is not available here: \(error)")
            return false
        }
    }

    /// A connected, non-blocking UDP client of 127.0.0.1:`port` (a flow of its own).
    public static func client(port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return fd
    }

    /// A connected, non-blocking UDP client of [::1]:`port`.
    public static func client6(port: UInt16) -> Int32 {
        let fd = socket(AF_INET6, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = port.bigEndian
        address.sin6_addr = in6addr_loopback
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
        return fd
    }

    public static func send(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        _ = Glibc.send(fd, &bytes, bytes.count, 0)
    }

    /// Receives one datagram, waiting at most `timeout`; nil when none came.
    public static func receive(_ fd: Int32, timeout: Duration = .seconds(5)) -> String? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&poller, 1, milliseconds) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 2048)
        let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        guard count >= 0 else { return nil }
        return String(decoding: buffer.prefix(count), as: UTF8.self)
    }

    /// The port of a bound socket.
    public static func port(of fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
        }
    }
}

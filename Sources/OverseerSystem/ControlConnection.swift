import Glibc
import COverseerShims
import SystemPackage

/// The client's end of a connection to overseerd's control socket: one
/// request out, one answer in, until the daemon closes.
///
/// `connect(to:)` believes only a server run by root or by this process's own
/// effective uid (`SO_PEERCRED`): in a directory another user could write
/// first (the `/tmp` default), that user could otherwise answer in overseerd's place.
public struct ControlConnection: Sendable {
    /// The largest answer taken; a longer one is not from overseerd.
    public static let maximumAnswerLength = 1 << 20

    /// The socket's path, as given.
    public let path: String
    /// Who runs the server, from `SO_PEERCRED`.
    public let serverPID: Int32
    public let serverUID: UInt32
    private let fd: FileDescriptor

    /// Connects to the unix stream socket at `path` and checks who serves it.
    public static func connect(to path: String) throws(ControlConnectionError) -> ControlConnection {
        var bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < MemoryLayout<sockaddr_un>.size - MemoryLayout<sa_family_t>.size,
              !bytes.contains(0) else {
            throw ControlConnectionError(path, .badPath)
        }
        if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlConnectionError(path, .cannotConnect(.last("socket(AF_UNIX)"))) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes[0] == 0 ? 0 : 1))
        do throws(ControlConnectionError) {
            // A connect interrupted by a signal goes on in the background: EINTR
            // is followed by EALREADY, then EISCONN once it has completed.
            while true {
                let rc = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
                }
                if rc == 0 { break }
                let error = Posix.errno
                if error == EINTR || error == EALREADY { continue }
                if error == EISCONN { break }
                throw ControlConnectionError(path, .cannotConnect(SystemError("connect", on: path, errno: Errno(rawValue: error))))
            }
            var pid: pid_t = 0
            var uid: uid_t = 0
            guard overseer_peer_credentials(fd, &pid, &uid) == 0 else {
                throw ControlConnectionError(path, .cannotConnect(.last("getsockopt(SO_PEERCRED)", on: path)))
            }
            let own = geteuid()
            guard uid == 0 || uid == own else {
                throw ControlConnectionError(path, .untrustedServer(uid: uid, pid: pid, own: own))
            }
            return ControlConnection(path: path, serverPID: pid, serverUID: uid, fd: FileDescriptor(rawValue: fd))
        } catch {
            Posix.close(fd)
            throw error
        }
    }

    /// Sends `request` whole, or throws `.noAnswer` at `deadline`. Returns early
    /// when the daemon has closed the connection: `receiveAll` then reads why.
    public func send(_ request: String, deadline: ContinuousClock.Instant) throws(ControlConnectionError) {
        var bytes = Array(request.utf8)[...]
        while !bytes.isEmpty {
            try wait(for: Int16(POLLOUT), until: deadline)
            let count = bytes.withUnsafeBytes { Glibc.send(fd.rawValue, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if count >= 0 { bytes = bytes.dropFirst(count); continue }
            let error = Posix.errno
            if error == EINTR || error == EAGAIN { continue }
            // The daemon has closed already (it refuses this user): its reason is there to be read.
            if error == EPIPE || error == ECONNRESET { return }
            throw ControlConnectionError(path, .failed(SystemError("send", on: path, errno: Errno(rawValue: error))))
        }
    }

    /// Everything the daemon sends until it closes the connection, or throws
    /// `.noAnswer` at `deadline`.
    public func receiveAll(deadline: ContinuousClock.Instant) throws(ControlConnectionError) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            try wait(for: Int16(POLLIN), until: deadline)
            let count = buffer.withUnsafeMutableBytes { Glibc.recv(fd.rawValue, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count == 0 { return received }
            if count > 0 {
                received += buffer.prefix(count)
                guard received.count <= Self.maximumAnswerLength else {
                    throw ControlConnectionError(path, .answerTooLong)
                }
                continue
            }
            let error = Posix.errno
            if error == EINTR || error == EAGAIN { continue }
            // The daemon closed with our request unread (it refused us): what it sent is its answer.
            if error == ECONNRESET, !received.isEmpty { return received }
            throw ControlConnectionError(path, .failed(SystemError("recv", on: path, errno: Errno(rawValue: error))))
        }
    }

    public func close() { Posix.close(fd.rawValue) }

    /// Waits until the socket is ready for `events`; throws `.noAnswer` at `deadline`.
    private func wait(for events: Int16, until deadline: ContinuousClock.Instant) throws(ControlConnectionError) {
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { throw ControlConnectionError(path, .noAnswer) }
            // Rounded up, so that a last sub-millisecond wait does not spin; at most a minute per poll.
            let milliseconds = Int32(min(60_000, remaining.totalMilliseconds) + 1)
            var entry = pollfd(fd: fd.rawValue, events: events, revents: 0)
            let rc = poll(&entry, 1, milliseconds)
            if rc > 0 { return }
            if rc < 0, Posix.errno != EINTR {
                throw ControlConnectionError(path, .failed(.last("poll", on: path)))
            }
        }
    }
}

extension Duration {
    fileprivate var totalMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        return overflow ? .max : product + attoseconds / 1_000_000_000_000_000
    }
}

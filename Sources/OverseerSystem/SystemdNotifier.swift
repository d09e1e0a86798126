import CSystemd
import OverseerProtocol

/// overseerd's own messages to its service manager, through libsystemd's
/// sd_notify. Does nothing when overseerd was not given a NOTIFY_SOCKET.
public struct SystemdNotifier: Sendable {
    /// Whether a service manager listens.
    public let isEnabled: Bool

    public init(environment: [String: String]) {
        isEnabled = environment[EnvironmentName.notifySocket].map { !$0.isEmpty } ?? false
    }

    /// Sends `message` with `fd` attached (SCM_RIGHTS), as `FDSTORE=1` needs.
    @discardableResult
    public func send(_ message: NotifyMessage, passing fd: Int32) -> Bool {
        guard isEnabled else { return false }
        var fds = [fd]
        return sd_pid_notify_with_fds(0, 0, message.encoded, &fds, 1) > 0
    }

    /// Sends the assignments as one datagram. Returns false when it could not be sent.
    @discardableResult
    public func send(_ message: NotifyMessage) -> Bool {
        guard isEnabled else { return false }
        return sd_notify(0, message.encoded) > 0
    }
}

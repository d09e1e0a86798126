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

    /// Sends the assignments as one datagram. Returns false when it could not be sent.
    @discardableResult
    public func send(_ message: NotifyMessage) -> Bool {
        guard isEnabled else { return false }
        return sd_notify(0, message.encoded) > 0
    }
}

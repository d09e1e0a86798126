/// The sockets a process was handed the systemd way: fds 3 ..< 3 + count,
/// announced by LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES (sd_listen_fds(3)).
public struct ListenFDs: Equatable, Sendable {
    /// The first inherited fd.
    public static let firstFD: Int32 = 3

    /// One name per socket, in fd order.
    public var names: [SocketName]

    public init(names: [SocketName]) { self.names = names }

    public var count: Int { names.count }

    /// The fds, 3 ..< 3 + count.
    public var fds: Range<Int32> { Self.firstFD ..< Self.firstFD + Int32(count) }

    /// Reads the sockets meant for `ownPID` from `environment`.
    ///
    /// Returns nil when there are none for this process: LISTEN_FDS unset, or
    /// LISTEN_PID naming another process (the variables were inherited, not
    /// meant for us). Missing names become `unknown`, as systemd does.
    public static func parse(environment: [String: String], ownPID: Int32) throws(ProtocolError) -> ListenFDs? {
        guard let countText = environment[EnvironmentName.listenFDs] else { return nil }
        guard let pidText = environment[EnvironmentName.listenPID] else { return nil }
        guard let pid = Int32(pidText), pid > 0 else {
            throw .badVariable(EnvironmentName.listenPID, value: pidText, reason: "not a pid")
        }
        guard pid == ownPID else { return nil }
        guard let count = Int(countText), count >= 0, count <= 65_536 else {
            throw .badVariable(EnvironmentName.listenFDs, value: countText, reason: "not a count of fds")
        }
        // As sd_listen_fds_with_names(3): no sockets, no names to check.
        guard count > 0 else { return ListenFDs(names: []) }
        var names: [SocketName] = []
        if let namesText = environment[EnvironmentName.listenFDNames] {
            let parts = namesText.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == count else {
                throw .badVariable(EnvironmentName.listenFDNames, value: namesText,
                                   reason: "\(parts.count) names for \(count) fds")
            }
            for part in parts {
                names.append(part.isEmpty ? .unnamed : try SocketName(String(part)))
            }
        } else {
            names = Array(repeating: .unnamed, count: count)
        }
        return ListenFDs(names: names)
    }

    /// LISTEN_FDS and LISTEN_FDNAMES for these sockets. LISTEN_PID is the
    /// receiving process's own pid and is written by the spawner.
    public var environmentEntries: [(name: String, value: String)] {
        [
            (EnvironmentName.listenFDs, String(count)),
            (EnvironmentName.listenFDNames, names.map(\.rawValue).joined(separator: ":")),
        ]
    }
}

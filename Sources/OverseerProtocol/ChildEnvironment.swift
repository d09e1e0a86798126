/// The environment a child starts with: overseerd's own, less what systemd
/// meant for overseerd, plus the socket-activation variables and the OVERSEER_* facts.
public struct ChildEnvironment: Sendable {
    /// What the child learns about itself.
    public struct Facts: Equatable, Sendable {
        public var binaryPath: String
        public var binaryID: String
        public var generation: Int
        public var notifySocket: String?

        public init(binaryPath: String, binaryID: String, generation: Int, notifySocket: String? = nil) {
            self.binaryPath = binaryPath
            self.binaryID = binaryID
            self.generation = generation
            self.notifySocket = notifySocket
        }
    }

    /// Placeholder value of LISTEN_PID: wide enough for any pid; the spawner
    /// overwrites it in the child with the child's own pid.
    public static let listenPIDPlaceholder = String(repeating: "0", count: 20)

    /// `NAME=VALUE` strings in a stable order: inherited ones first (in the
    /// order given), then the contract's, with LISTEN_PID last. Without sockets
    /// no LISTEN_* variable is set at all.
    public static func entries(
        inherited: [(name: String, value: String)],
        sockets: ListenFDs,
        facts: Facts
    ) -> [String] {
        let ours: Set<String> = [
            EnvironmentName.binaryPath, EnvironmentName.binaryID, EnvironmentName.generation,
            EnvironmentName.checkToken,
        ]
        var result: [String] = []
        result.reserveCapacity(inherited.count + 8)
        for (name, value) in inherited where !EnvironmentName.systemdOwn.contains(name) && !ours.contains(name) {
            result.append("\(name)=\(value)")
        }
        if sockets.count > 0 {
            for (name, value) in sockets.environmentEntries {
                result.append("\(name)=\(value)")
            }
        }
        if let socket = facts.notifySocket {
            result.append("\(EnvironmentName.notifySocket)=\(socket)")
        }
        result.append("\(EnvironmentName.binaryPath)=\(facts.binaryPath)")
        result.append("\(EnvironmentName.binaryID)=\(facts.binaryID)")
        result.append("\(EnvironmentName.generation)=\(facts.generation)")
        // LISTEN_PID last, so the spawner finds it at a known place.
        if sockets.count > 0 {
            result.append("\(EnvironmentName.listenPID)=\(listenPIDPlaceholder)")
        }
        return result
    }
}

/// The environment a child starts with: overseerd's own, less what systemd
/// meant for overseerd, plus the socket-activation variables and the OVERSEER_* facts.
public struct ChildEnvironment: Sendable {
    /// What the child learns about itself.
    public struct Facts: Equatable, Sendable {
        public var binaryPath: String
        public var binaryID: String
        public var generation: Int
        public var notifySocket: String?
        /// With `--workers N`: this worker's number and N (`OVERSEER_WORKER`, `OVERSEER_WORKERS`); nil with one child.
        public var worker: (number: Int, of: Int)?

        public init(binaryPath: String, binaryID: String, generation: Int, notifySocket: String? = nil, worker: (number: Int, of: Int)? = nil) {
            self.binaryPath = binaryPath
            self.binaryID = binaryID
            self.generation = generation
            self.notifySocket = notifySocket
            self.worker = worker
        }

        public static func == (lhs: Facts, rhs: Facts) -> Bool {
            lhs.binaryPath == rhs.binaryPath && lhs.binaryID == rhs.binaryID && lhs.generation == rhs.generation
                && lhs.notifySocket == rhs.notifySocket && lhs.worker?.number == rhs.worker?.number && lhs.worker?.of == rhs.worker?.of
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
        var ours: Set<String> = [
            EnvironmentName.binaryPath, EnvironmentName.binaryID, EnvironmentName.generation,
            EnvironmentName.checkToken,
        ]
        if facts.worker != nil { ours.formUnion([EnvironmentName.worker, EnvironmentName.workers]) }
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
        if let worker = facts.worker {
            result.append("\(EnvironmentName.worker)=\(worker.number)")
            result.append("\(EnvironmentName.workers)=\(worker.of)")
        }
        // LISTEN_PID last, so the spawner finds it at a known place.
        if sockets.count > 0 {
            result.append("\(EnvironmentName.listenPID)=\(listenPIDPlaceholder)")
        }
        return result
    }
}

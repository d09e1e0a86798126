/// What happens to the processes an exited generation left in its process
/// group (a wrapper's server that did not `exec`, a fork-per-connection
/// server's children). They keep the listening sockets and could go on
/// accepting with old code with nobody to stop them, but they may also be
/// finishing work: they get the stop timeout, then SIGKILL, as systemd's
/// `KillMode=mixed` does at a unit's end. When overseerd exits they are killed
/// at once, since nobody would stop them afterwards.
public struct LeftoverCleanup: Sendable {
    /// Whose process group it was: a generation's child, or with `--workers` one of its workers.
    public struct Owner: Equatable, Sendable, CustomStringConvertible {
        public let generation: Int
        public let worker: Int?

        public init(generation: Int, worker: Int? = nil) {
            self.generation = generation
            self.worker = worker
        }

        public var description: String { worker.map { "worker \($0) of generation \(generation)" } ?? "generation \(generation)" }
    }

    public enum Event: Equatable, Sendable {
        /// `owner` (led by `leader`) exited and left `pids` in its group; the
        /// caller holds them under `key` (the generation, or with `--workers` the worker's instance).
        case left(key: Int, owner: Owner, leader: Int32, pids: [Int32])
        /// The grace period of what is held under `key` ended.
        case graceEnded(key: Int)
        /// overseerd is about to exit.
        case exiting
    }

    public enum Action: Equatable, Sendable {
        case startGrace(key: Int, after: Duration)
        /// SIGKILL to what `owner` left (the caller holds them by pidfd under `key`).
        case kill(key: Int, owner: Owner)
        case log(LogLine)
    }

    public let grace: Duration
    /// What waits for its grace to end, by key.
    public private(set) var waiting: [Int: Owner] = [:]

    public init(grace: Duration) { self.grace = grace }

    /// Nothing left behind is waiting (a re-exec may go ahead).
    public var isEmpty: Bool { waiting.isEmpty }

    public mutating func handle(_ event: Event) -> [Action] {
        switch event {
        case let .left(key, owner, leader, pids):
            guard !pids.isEmpty else { return [] }
            waiting[key] = owner
            let list = pids.prefix(8).map(String.init).joined(separator: ", ") + (pids.count > 8 ? ", …" : "")
            return [
                .log(LogLine(.warning, .leftoversFound, "\(owner) (pid \(leader)) exited and left \(pids.count) process(es) in its process group (\(list)); SIGKILL in \(grace.shortDescription) unless they end", generation: owner.generation)),
                .startGrace(key: key, after: grace),
            ]
        case let .graceEnded(key):
            guard let owner = waiting.removeValue(forKey: key) else { return [] }
            return [.kill(key: key, owner: owner)]
        case .exiting:
            let all = waiting.sorted { $0.key < $1.key }
            waiting = [:]
            return all.map { .kill(key: $0.key, owner: $0.value) }
        }
    }
}

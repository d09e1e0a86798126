/// What happens to the processes an exited generation left in its process
/// group (a wrapper's server that did not `exec`, a fork-per-connection
/// server's children). They keep the listening sockets and could go on
/// accepting with old code with nobody to stop them, but they may also be
/// finishing work: they get the stop timeout, then SIGKILL, as systemd's
/// `KillMode=mixed` does at a unit's end. When overseerd exits they are killed
/// at once, since nobody would stop them afterwards.
public struct LeftoverCleanup: Sendable {
    public enum Event: Equatable, Sendable {
        /// `generation` (led by `leader`) exited and left `pids` in its group.
        case left(generation: Int, leader: Int32, pids: [Int32])
        /// The grace period of `generation`'s leftovers ended.
        case graceEnded(generation: Int)
        /// overseerd is about to exit.
        case exiting
    }

    public enum Action: Equatable, Sendable {
        case startGrace(generation: Int, after: Duration)
        /// SIGKILL to what `generation` left (the caller holds them by pidfd).
        case kill(generation: Int)
        case log(LogLine)
    }

    public let grace: Duration
    /// Generations whose leftovers wait for their grace to end.
    public private(set) var waiting: Set<Int> = []

    public init(grace: Duration) { self.grace = grace }

    /// Nothing left behind is waiting (a re-exec may go ahead).
    public var isEmpty: Bool { waiting.isEmpty }

    public mutating func handle(_ event: Event) -> [Action] {
        switch event {
        case let .left(generation, leader, pids):
            guard !pids.isEmpty else { return [] }
            waiting.insert(generation)
            let list = pids.prefix(8).map(String.init).joined(separator: ", ") + (pids.count > 8 ? ", …" : "")
            return [
                .log(LogLine(.warning, .leftoversFound, "generation \(generation) (pid \(leader)) exited and left \(pids.count) process(es) in its process group (\(list)); SIGKILL in \(grace.shortDescription) unless they end", generation: generation)),
                .startGrace(generation: generation, after: grace),
            ]
        case let .graceEnded(generation):
            guard waiting.remove(generation) != nil else { return [] }
            return [.kill(generation: generation)]
        case .exiting:
            let all = waiting.sorted()
            waiting = []
            return all.map { .kill(generation: $0) }
        }
    }
}

/// Whether the service overseerd runs is up, as `overseerd health`,
/// `GET /healthz` and `GET /readyz` answer: healthy when a generation serves
/// (is ready and not being stopped), including while a restart starts the next
/// one beside it; not healthy while the first generation starts, while nothing
/// serves (the serving child exited, overseerd stops) and while a failed
/// probation is rolled back. One line says which. Judged from overseerd's own
/// state only: the child is never asked.
public struct ServiceHealth: Equatable, Sendable {
    /// What the judgement is made from.
    public struct Facts: Equatable, Sendable {
        /// The generation that is ready and gets signals, and its pid.
        public var serving: (generation: Int, pid: Int32)?
        /// The serving generation is being stopped (overseerd stops).
        public var servingStopping = false
        /// The generation started and not yet ready.
        public var candidate: Int?
        /// A generation failed its probation; the previous binary is starting.
        public var rollingBack = false

        public init(serving: (generation: Int, pid: Int32)? = nil, servingStopping: Bool = false,
                    candidate: Int? = nil, rollingBack: Bool = false) {
            self.serving = serving
            self.servingStopping = servingStopping
            self.candidate = candidate
            self.rollingBack = rollingBack
        }

        public static func == (lhs: Facts, rhs: Facts) -> Bool {
            lhs.serving?.generation == rhs.serving?.generation && lhs.serving?.pid == rhs.serving?.pid
                && lhs.servingStopping == rhs.servingStopping && lhs.candidate == rhs.candidate && lhs.rollingBack == rhs.rollingBack
        }
    }

    /// Exit 0, HTTP 200.
    public var healthy: Bool
    /// One line for a person, starting with the state's name.
    public var line: String

    public init(_ facts: Facts) {
        if let serving = facts.serving, !facts.servingStopping {
            healthy = true
            if let candidate = facts.candidate {
                line = "restarting: generation \(serving.generation) (pid \(serving.pid)) serves, generation \(candidate) is starting"
            } else {
                line = "serving: generation \(serving.generation) (pid \(serving.pid)) is ready"
            }
            return
        }
        healthy = false
        if facts.serving != nil {
            line = "stopping: overseerd is stopping its generations"
        } else if facts.rollingBack {
            line = "rolling back: a new binary failed its probation; " + (facts.candidate.map { "generation \($0) starts on the previous binary" } ?? "the previous binary is being put back")
        } else if facts.candidate == 1 {
            line = "starting: generation 1 is not ready yet"
        } else if let candidate = facts.candidate {
            line = "no serving generation: the serving child exited; generation \(candidate) is starting"
        } else {
            line = "no serving generation: the child is gone; overseerd is stopping"
        }
    }
}

/// `--workers N` and the flags of a rolling restart (`WorkerPool`).
public struct WorkerSettings: Equatable, Sendable {
    /// Processes per generation (`--workers`); 1 is overseerd's one child.
    public var count: Int
    /// Worker slots replaced at a time during a roll (`--roll-batch`).
    public var rollBatch: Int
    /// The first delay before a crashed worker is replaced; doubled per crash.
    public var restartDelay: Duration
    /// The longest delay before a crashed worker is replaced (`--worker-restart-max-delay`).
    public var restartMaxDelay: Duration
    /// A worker ready this long resets its slot's delay to `restartDelay`.
    public var healthyAfter: Duration
    /// Every slot's worker exiting within this window, none ready, ends overseerd (`--worker-crash-window`).
    public var crashWindow: Duration

    /// The most workers overseerd runs: each costs overseerd a pidfd and a notify socket (and two pipes with --child-output capture).
    public static let maximumCount = 128

    public init(count: Int = 1, rollBatch: Int = 1, restartDelay: Duration = .milliseconds(100),
                restartMaxDelay: Duration = .seconds(10), healthyAfter: Duration = .seconds(60),
                crashWindow: Duration = .seconds(30)) {
        self.count = count
        self.rollBatch = rollBatch
        self.restartDelay = restartDelay
        self.restartMaxDelay = restartMaxDelay
        self.healthyAfter = healthyAfter
        self.crashWindow = crashWindow
    }

    /// Checks the flags together. Throws the first problem found.
    public func validate() throws(ConfigurationError) {
        if !(1 ... Self.maximumCount).contains(count) {
            throw ConfigurationError("bad --workers \(count): give a number of processes from 1 to \(Self.maximumCount)")
        }
        if !(1 ... count).contains(rollBatch) {
            throw ConfigurationError("bad --roll-batch \(rollBatch): give a number from 1 to --workers (\(count))")
        }
        if restartMaxDelay < restartDelay {
            throw ConfigurationError("--worker-restart-max-delay \(restartMaxDelay.shortDescription) is shorter than the first delay (\(restartDelay.shortDescription)): give a longer one")
        }
        if crashWindow <= .zero {
            throw ConfigurationError("--worker-crash-window must be longer than 0")
        }
    }
}

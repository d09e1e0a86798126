/// One upgrade at a time, as a pure state machine: poll → fetch → verify (each
/// configured step) → install → restart, and what to do when a step fails.
/// The installed binary is replaced only after every check has passed. What
/// becomes of a binary once it is installed (its trial, a rollback, which
/// binaries are rejected or installed) is `BinaryLife`'s alone: the cycle is
/// told what a fetched hash is to that machine, and asks it to reject one.
public struct UpgradeCycle: Sendable {
    /// A check the staged binary must pass, in this order.
    public enum Step: Equatable, Sendable, CustomStringConvertible {
        case checksum, signature, check, preUpgrade

        public var description: String {
            switch self {
            case .checksum: "checksum"
            case .signature: "signature"
            case .check: "start check"
            case .preUpgrade: "pre-upgrade command"
            }
        }
    }

    public enum Event: Equatable, Sendable {
        /// Time to poll (the timer fired, or the watched file changed and settled).
        case pollDue
        /// The fetch ended with new bytes staged; `sha256` is the daemon's own
        /// hash of them; `known`: what `BinaryLife` already knows of that hash.
        case fetched(sha256: String, known: Known? = nil)
        /// The source has nothing new.
        case unchanged
        case fetchFailed(reason: String)
        case stepPassed(Step)
        case stepFailed(Step, reason: String)
        case installed
        /// Installing failed for a local reason (a full disk, an obstacle at
        /// `PROGRAM.previous`): the verified file stays staged and is installed
        /// again later, without a new download.
        case installFailed(reason: String)
        /// The time to try a failed install again has come.
        case installRetryDue
        /// The verified binary cannot be installed yet: the installed one is on
        /// trial (or being rolled back). It stays staged until `trialEnded`.
        case installHeld
        /// The trial (or rollback) that held the install has ended.
        case trialEnded
        /// The cycle cannot go on for a reason that is not the candidate's fault
        /// (its staged file is gone, a step could not be run at all): drop it,
        /// without rejecting its hash, and poll again after the backoff.
        case abandoned(reason: String)
        /// The generation started on the new binary became ready, or did not.
        case restartFinished(succeeded: Bool, reason: String?)
    }

    /// A fetched hash that needs no checks.
    public enum Known: Equatable, Sendable {
        /// It is the binary in place.
        case installed
        /// It was rejected before.
        case rejected
    }

    public enum Action: Equatable, Sendable {
        case startFetch
        /// The candidate failed a check: `BinaryLife` remembers it as rejected.
        case reject(sha256: String)
        case verify(Step)
        /// Remove the staged file.
        case discardStaged
        case install(sha256: String)
        case requestRestart(sha256: String)
        case schedulePoll(after: Duration)
        case scheduleInstallRetry(after: Duration)
        case log(LogLine)

        public static func log(_ level: Supervision.LogLevel, _ event: DaemonEvent, _ message: String, binary: String? = nil) -> Action {
            .log(LogLine(level, event, message, binary: binary))
        }
    }

    public enum State: Equatable, Sendable {
        case idle
        case fetching
        case verifying(Step, sha256: String)
        case installing(sha256: String)
        /// Verified and staged, its install failed `attempts` times; tried again later.
        case installPending(sha256: String, attempts: Int, reason: String)
        /// Verified and staged; waits for the installed binary's trial to end.
        case installHeld(sha256: String)
        case restarting(sha256: String)
    }

    public let steps: [Step]
    public let interval: Duration
    public let restartAfterInstall: Bool
    public private(set) var state: State = .idle
    /// Failed polls in a row, for the backoff.
    public private(set) var failures = 0
    /// A poll asked for while a cycle runs: done when it ends.
    private var pollQueued = false
    /// The last failed install, while it is being retried.
    private var pendingInstall: State?

    /// - Parameter steps: the configured checks, in order (see `UpgradeCycle.steps(for:)`).
    public init(steps: [Step], interval: Duration, restartAfterInstall: Bool) {
        self.steps = steps
        self.interval = interval
        self.restartAfterInstall = restartAfterInstall
    }

    /// The steps `settings` ask for.
    public static func steps(for settings: UpgradeSettings) -> [Step] {
        var steps: [Step] = []
        if settings.sha256 != nil || settings.sidecarChecksum || settings.manifest { steps.append(.checksum) }
        // With a manifest, its signature covers the binary through the manifest's sha256.
        if settings.minisignKey != nil, !settings.manifest { steps.append(.signature) }
        if settings.check != .none { steps.append(.check) }
        if settings.preUpgrade != nil { steps.append(.preUpgrade) }
        return steps
    }

    /// The delay before the next poll: the interval after a success, an
    /// exponential backoff (2 s doubling, at most the interval) after failures;
    /// both spread by ±10 % with `jitter` in 0 ..< 1, so a fleet does not poll in step.
    public static func delay(interval: Duration, failures: Int, jitter: Double) -> Duration {
        var base = interval
        if failures > 0 {
            let backoff = Duration.seconds(2) * (1 << min(failures - 1, 20))
            base = min(backoff, interval)
        }
        let factor = 0.9 + 0.2 * min(max(jitter, 0), 1)
        return .nanoseconds(Int64(Double(base.totalNanoseconds) * factor))
    }

    public mutating func handle(_ event: Event, jitter: Double = 0.5) -> [Action] {
        var actions: [Action] = []
        switch (state, event) {
        case (.idle, .pollDue):
            state = .fetching
            actions.append(.startFetch)
        case (_, .pollDue):
            pollQueued = true
        case (.fetching, .unchanged):
            failures = 0
            finish(into: &actions, jitter: jitter)
        case let (.fetching, .fetchFailed(reason)):
            failures += 1
            let next = Self.delay(interval: interval, failures: failures, jitter: jitter)
            actions.append(.discardStaged)
            actions.append(.log(.warning, .upgradePollFailed, "fetch failed: \(reason); next try in \(next.approximateDescription)"))
            state = .idle
            actions.append(.schedulePoll(after: next))
            pollQueued = false
        case let (.fetching, .fetched(sha256, known)):
            failures = 0
            if known == .installed {
                actions.append(.log(.debug, .upgradeUnchanged, "fetched binary \(sha256.prefix(12)) is the one installed", binary: sha256))
                actions.append(.discardStaged)
                finish(into: &actions, jitter: jitter)
            } else if known == .rejected {
                actions.append(.log(.debug, .upgradeUnchanged, "fetched binary \(sha256.prefix(12)) was rejected before; skipped", binary: sha256))
                actions.append(.discardStaged)
                finish(into: &actions, jitter: jitter)
            } else {
                actions.append(.log(.notice, .upgradeFetched, "new binary \(sha256.prefix(12)) fetched; verifying", binary: sha256))
                next(after: nil, sha256: sha256, into: &actions)
            }
        case let (.verifying(step, sha256), .stepPassed(passed)) where passed == step:
            next(after: step, sha256: sha256, into: &actions)
        case let (.verifying(step, sha256), .stepFailed(failed, reason)) where failed == step:
            actions.append(.reject(sha256: sha256))
            actions.append(.discardStaged)
            actions.append(.log(.error, .upgradeRejected, "upgrade rejected: \(step) failed for \(sha256.prefix(12)): \(reason); the installed binary stays", binary: sha256))
            finish(into: &actions, jitter: jitter)
        case let (.installing(sha256), .installed):
            pendingInstall = nil
            if restartAfterInstall {
                state = .restarting(sha256: sha256)
                actions.append(.log(.notice, .upgradeInstalled, "installed \(sha256.prefix(12)); restarting", binary: sha256))
                actions.append(.requestRestart(sha256: sha256))
            } else {
                actions.append(.log(.notice, .upgradeInstalled, "installed \(sha256.prefix(12)); it runs from the next restart (--no-restart)", binary: sha256))
                finish(into: &actions, jitter: jitter)
            }
        case let (.installing(sha256), .installFailed(reason)):
            var attempts = 1
            if case let .installPending(_, earlier, _) = pendingInstall { attempts = earlier + 1 }
            let next = Self.delay(interval: interval, failures: attempts, jitter: jitter)
            state = .installPending(sha256: sha256, attempts: attempts, reason: reason)
            pendingInstall = state
            actions.append(.log(.error, .upgradeInstallFailed, "upgrade to \(sha256.prefix(12)) not installed: \(reason); the installed binary stays; trying again in \(next.approximateDescription)", binary: sha256))
            actions.append(.scheduleInstallRetry(after: next))
        case let (.installPending(sha256, _, _), .installRetryDue):
            state = .installing(sha256: sha256)
            actions.append(.install(sha256: sha256))
        case let (.installing(sha256), .installHeld):
            state = .installHeld(sha256: sha256)
            actions.append(.log(.info, .upgradeHeld, "\(sha256.prefix(12)) is verified and waits: the installed binary is on trial; it is installed once the trial has ended", binary: sha256))
        case let (.installHeld(sha256), .trialEnded):
            state = .installing(sha256: sha256)
            actions.append(.install(sha256: sha256))
        case let (.restarting(sha256), .restartFinished(succeeded, reason)):
            if succeeded {
                actions.append(.log(.notice, .upgradeSucceeded, "upgrade to \(sha256.prefix(12)) done", binary: sha256))
            } else {
                // Its trial failed: `BinaryLife` has rejected it and puts the last good binary back.
                actions.append(.log(.error, .upgradeFailed, "upgrade to \(sha256.prefix(12)) failed: \(reason ?? "the new generation did not become ready"); the last good binary goes back", binary: sha256))
            }
            finish(into: &actions, jitter: jitter)
        case let (.fetching, .abandoned(reason)), let (.verifying, .abandoned(reason)),
             let (.installing, .abandoned(reason)), let (.installPending, .abandoned(reason)),
             let (.installHeld, .abandoned(reason)):
            failures += 1
            pendingInstall = nil
            actions.append(.discardStaged)
            actions.append(.log(.error, .upgradeAbandoned, "upgrade abandoned: \(reason); the installed binary stays"))
            finish(into: &actions, jitter: jitter)
        case (.idle, .installed), (.idle, .restartFinished), (_, .trialEnded):
            break
        default:
            actions.append(.log(.debug, .upgradeIgnored, "upgrade cycle: \(event) ignored in \(state)"))
        }
        return actions
    }

    private mutating func next(after step: Step?, sha256: String, into actions: inout [Action]) {
        let index = step.flatMap { steps.firstIndex(of: $0) }.map { $0 + 1 } ?? 0
        if index < steps.count {
            state = .verifying(steps[index], sha256: sha256)
            actions.append(.verify(steps[index]))
        } else {
            state = .installing(sha256: sha256)
            actions.append(.install(sha256: sha256))
        }
    }

    private mutating func finish(into actions: inout [Action], jitter: Double) {
        state = .idle
        if pollQueued {
            pollQueued = false
            state = .fetching
            actions.append(.startFetch)
        } else {
            actions.append(.schedulePoll(after: Self.delay(interval: interval, failures: failures, jitter: jitter)))
        }
    }
}

/// The one owner of a binary's life across upgrades, as a pure machine:
///
/// ```
/// candidate → verified → installed on trial → serving on probation → good
///      ╰─────────╰────────────╰────────────────────╰──→ rejected
/// ```
///
/// The fetch and the checks (candidate → verified) are `UpgradeCycle`'s; a
/// check that fails reports `rejected` here. From `installing` on, this machine
/// alone decides: it records the trial *before* the file moves, watches every
/// generation that runs the binary on trial (whatever else happens: a restart,
/// a re-exec, a stop, overseerd killed and started again), and when one of them
/// fails it rolls back to the **last good** binary: the one that passed its
/// probation, or the one present before any upgrade. No other binary is ever a
/// rollback target, so an unproven binary can never be put back.
///
/// A release arriving during a trial waits until the trial has ended (the
/// upgrade driver holds its polls while `isOnTrial`): the trial then either
/// passed, and the waiting release is tried against a proven target, or failed,
/// and it is tried against the binary rolled back to.
///
/// `record` is exactly what the state directory keeps (`BinaryLife.Record`, one
/// versioned codec); everything else here lives for one run of overseerd.
public struct BinaryLife: Equatable, Sendable {
    /// A binary and, when a release manifest named it, its release version.
    public struct Release: Equatable, Hashable, Sendable {
        public var sha256: String
        public var version: String?

        public init(sha256: String, version: String? = nil) {
            self.sha256 = sha256
            self.version = version
        }
    }

    public enum Event: Equatable, Sendable {
        /// overseerd starts (or a new image takes over): `sha256` is the program
        /// file in place now. Reconciles the record with the file.
        case started(identified: String)
        /// A verified release is about to replace the installed binary: its
        /// trial is recorded (and persisted) before the file moves.
        case installing(Release)
        /// Installing `sha256` failed: nothing moved, the installed binary stays.
        case installFailed(sha256: String)
        /// A candidate failed a check: never tried again until forgotten.
        case rejected(sha256: String)
        /// An operator's `overseerd forget`.
        case forgotten(sha256: String)
        /// A release manifest names the installed binary (installed by hand, or
        /// the state was lost): its version is known from now on.
        case versionLearned(Release)
        /// A generation was started from `binary`.
        case generationStarted(Int, binary: String)
        /// The generation said it is ready (it serves).
        case generationReady(Int)
        /// The generation failed: exited without being asked, was not ready in
        /// time, could not start, or stopped sending WATCHDOG=1 on trial.
        case generationFailed(Int, reason: String)
        /// The generation is gone (whatever the reason).
        case generationExited(Int)
        /// `--probation` has passed since the trial binary first served.
        case trialWindowEnded
        /// The trial watchdog check: generations that stopped sending WATCHDOG=1.
        case trialWatchdogChecked(stale: [Int])
        /// The manifest yanked the installed release.
        case yanked(reason: String)
        /// The rollback ended: the file in place is now `restored` (its hash,
        /// read back), or the rollback failed for `failure`.
        case rollbackFinished(restored: String?, failure: String?)
    }

    public enum Action: Equatable, Sendable {
        /// Write `record` to the state directory (before any action that follows).
        case persist
        case startTrialWindow(after: Duration)
        case cancelTrialWindow
        /// Check the WATCHDOG=1 pings of the generations on trial after `after`.
        case startTrialWatchdog(after: Duration)
        /// Put `target` back in place of `replacing` (from `PROGRAM.previous`,
        /// checked to hash to `target.sha256`), then report `rollbackFinished`.
        case rollBack(to: Release, replacing: Release)
        case log(LogLine)
    }

    /// A rollback under way.
    public struct Rollback: Equatable, Sendable {
        public var target: Release
        public var bad: Release
        /// Why, as a person reads it ("generation 2 exited with status 4 during its probation").
        public var reason: String
    }

    public let probation: Duration
    /// `--probation-watchdog`: a generation on trial that pinged and then
    /// stopped for this long has failed.
    public let probationWatchdog: Duration?
    /// What the state directory keeps.
    public private(set) var record: Record
    /// The generations alive and the binary each runs.
    public private(set) var generations: [Int: String] = [:]
    /// The trial binary served (a generation on it became ready) in this run; its window runs.
    public private(set) var trialServing = false
    public private(set) var rollback: Rollback?
    /// A yank that could not be carried out was said for this binary (once).
    private var yankRefusedFor: String?

    public init(probation: Duration, probationWatchdog: Duration? = nil, record: Record = Record()) {
        self.probation = probation
        self.probationWatchdog = probationWatchdog
        self.record = record
    }

    // MARK: - What others ask

    /// The binary in place, as far as overseerd knows.
    public var installed: Release? { record.installed }
    /// The only binary a rollback may put back.
    public var lastGood: Release? { record.lastGood }
    public var rejected: Set<String> { record.rejected }
    /// The installed binary is on trial (installed, and not yet through its probation).
    public var isOnTrial: Bool { record.onTrial }
    /// The binary on trial, if one is.
    public var trialBinary: String? { record.onTrial ? record.installed?.sha256 : nil }
    /// The generations alive that run the binary on trial.
    public var trialGenerations: [Int] {
        guard let trial = trialBinary else { return [] }
        return generations.filter { $0.value == trial }.map(\.key).sorted()
    }
    /// The installed release's version and the one a yank goes back to (for `RolloutDecision`).
    public var previousVersion: String? { record.onTrial ? record.lastGood?.version : record.prior?.version }
    /// The release version of `sha256`, when the record knows it (installed, last good or the one before).
    public func version(of sha256: String) -> String? {
        [record.installed, record.lastGood, record.prior].compactMap { $0 }.first { $0.sha256 == sha256 }?.version
    }

    /// Whether `generation` runs a binary that was rejected (it must not keep serving).
    public func runsRejected(_ generation: Int) -> Bool {
        generations[generation].map { record.rejected.contains($0) } ?? false
    }

    // MARK: - Events

    public mutating func handle(_ event: Event) -> [Action] {
        var actions: [Action] = []
        switch event {
        case let .started(identified):
            start(identified: identified, into: &actions)
        case let .installing(release):
            guard rollback == nil, !record.onTrial else {
                actions.append(.log(.error, .upgradeIgnored, "release \(release.sha256.prefix(12)) not installed: a trial or a rollback is under way", binary: release.sha256))
                break
            }
            if record.lastGood == nil { record.lastGood = record.installed }
            // The install moves the last good binary to PROGRAM.previous: the one before it is gone from disk.
            record.prior = nil
            record.installed = release
            record.onTrial = true
            trialServing = false
            actions.append(.persist)
        case let .installFailed(sha256):
            guard record.onTrial, record.installed?.sha256 == sha256, !trialServing,
                  !generations.values.contains(sha256) else { break }
            record.installed = record.lastGood
            record.onTrial = false
            actions.append(.persist)
        case let .rejected(sha256):
            if record.rejected.insert(sha256).inserted { actions.append(.persist) }
        case let .forgotten(sha256):
            if record.rejected.remove(sha256) != nil { actions.append(.persist) }
        case let .versionLearned(release):
            guard record.installed?.sha256 == release.sha256, record.installed != release else { break }
            if record.lastGood?.sha256 == release.sha256 { record.lastGood = release }
            record.installed = release
            actions.append(.persist)
        case let .generationStarted(generation, binary):
            generations[generation] = binary
        case let .generationReady(generation):
            ready(generation, into: &actions)
        case let .generationFailed(generation, reason):
            failed(generation, reason: reason, into: &actions)
        case let .generationExited(generation):
            generations[generation] = nil
        case .trialWindowEnded:
            guard record.onTrial, trialServing, rollback == nil, let trial = record.installed else { break }
            pass(trial, into: &actions)
        case let .trialWatchdogChecked(stale):
            guard record.onTrial, trialServing, rollback == nil else { break }
            if let generation = stale.first(where: { generations[$0] == trialBinary }) {
                failed(generation, reason: "stopped sending WATCHDOG=1", into: &actions)
            } else if let every = watchdogPeriod {
                actions.append(.startTrialWatchdog(after: every))
            }
        case let .yanked(reason):
            yank(reason: reason, into: &actions)
        case let .rollbackFinished(restored, failure):
            rollbackFinished(restored: restored, failure: failure, into: &actions)
        }
        return actions
    }

    // MARK: - Transitions

    private mutating func start(identified: String, into actions: inout [Action]) {
        guard let installed = record.installed else {
            // Nothing known: the binary in place is the one before any upgrade.
            record.installed = Release(sha256: identified)
            record.lastGood = record.installed
            actions.append(.persist)
            return
        }
        if installed.sha256 == identified {
            if record.lastGood == nil { record.lastGood = installed }
            if record.rejected.contains(identified), let good = record.lastGood, good.sha256 != identified {
                // Rejected while overseerd was going down (or killed mid-rollback): never served again.
                actions.append(.log(.error, .probationFailed, "the installed binary \(identified.prefix(12)) was rejected; putting \(good.sha256.prefix(12)) back before the first start", binary: identified))
                beginRollback(to: good, bad: installed, reason: "it was rejected before overseerd stopped", into: &actions)
            } else if record.onTrial {
                actions.append(.log(.notice, .probationStarted, "the installed binary \(identified.prefix(12)) is still on trial: a failure of any generation on it within \(probation.shortDescription) of serving puts \(record.lastGood.map { String($0.sha256.prefix(12)) } ?? "?") back", binary: identified))
            }
            return
        }
        if record.onTrial, let good = record.lastGood, good.sha256 == identified {
            // Stopped between recording the trial and moving the file: the install never happened.
            record.installed = good
            record.onTrial = false
            actions.append(.log(.notice, .stateLoaded, "the recorded install of \(installed.sha256.prefix(12)) never happened; \(identified.prefix(12)) is in place", binary: identified))
            actions.append(.persist)
            return
        }
        // Changed by hand: what is in place now is the baseline.
        actions.append(.log(.notice, .stateLoaded, "the program is \(identified.prefix(12)), not \(installed.sha256.prefix(12)) as recorded (changed by hand?): it is taken as the last good binary", binary: identified))
        record.installed = Release(sha256: identified)
        record.lastGood = record.installed
        record.prior = nil
        record.onTrial = false
        record.rejected.remove(identified)
        actions.append(.persist)
    }

    /// The window runs from the newest generation on the trial binary becoming
    /// ready: a binary passes only once one process of it has served a whole
    /// `--probation` (restarts during the trial cannot spread it over several).
    private mutating func ready(_ generation: Int, into actions: inout [Action]) {
        guard record.onTrial, rollback == nil, let trial = record.installed,
              generations[generation] == trial.sha256 else { return }
        if trialServing {
            if probation > .zero { actions.append(.startTrialWindow(after: probation)) }
            return
        }
        trialServing = true
        guard probation > .zero else {
            pass(trial, into: &actions)
            return
        }
        actions.append(.log(LogLine(.info, .probationStarted, "generation \(generation) runs \(trial.sha256.prefix(12)), on trial: on probation for \(probation.shortDescription)", generation: generation, binary: trial.sha256)))
        actions.append(.startTrialWindow(after: probation))
        if let every = watchdogPeriod { actions.append(.startTrialWatchdog(after: every)) }
    }

    private mutating func failed(_ generation: Int, reason: String, into actions: inout [Action]) {
        guard record.onTrial, rollback == nil, let trial = record.installed, generations[generation] == trial.sha256 else { return }
        guard let good = record.lastGood, good.sha256 != trial.sha256 else {
            actions.append(.log(LogLine(.error, .rollbackFailed, "generation \(generation) \(reason) on trial, but there is no other binary known good to put back", generation: generation, binary: trial.sha256)))
            record.onTrial = false
            record.rejected.insert(trial.sha256)
            actions.append(.persist)
            return
        }
        let stage = trialServing ? "during its probation" : "on trial"
        let why = "generation \(generation) \(reason) \(stage)"
        actions.append(.log(LogLine(.error, .probationFailed, "\(why); \(trial.sha256.prefix(12)) is rejected and \(good.sha256.prefix(12)) goes back", generation: generation, binary: trial.sha256)))
        if trialServing { actions.append(.cancelTrialWindow) }
        beginRollback(to: good, bad: trial, reason: why, into: &actions)
    }

    private mutating func yank(reason: String, into actions: inout [Action]) {
        guard rollback == nil, let installed = record.installed else { return }
        if record.onTrial, let good = record.lastGood, good.sha256 != installed.sha256 {
            actions.append(.log(.notice, .rolloutDecision, "release \(reason): it is on trial; \(good.sha256.prefix(12)) goes back", binary: installed.sha256))
            if trialServing { actions.append(.cancelTrialWindow) }
            beginRollback(to: good, bad: installed, reason: "release \(reason)", into: &actions)
        } else if !record.onTrial, let prior = record.prior {
            actions.append(.log(.notice, .rolloutDecision, "release \(reason); \(prior.sha256.prefix(12)) goes back", binary: installed.sha256))
            beginRollback(to: prior, bad: installed, reason: "release \(reason)", into: &actions)
        } else if yankRefusedFor != installed.sha256 {
            yankRefusedFor = installed.sha256
            actions.append(.log(.error, .rollbackFailed, "release \(reason), but no earlier good binary is on disk to go back to; it stays", binary: installed.sha256))
        }
    }

    private mutating func beginRollback(to target: Release, bad: Release, reason: String, into actions: inout [Action]) {
        record.rejected.insert(bad.sha256)
        rollback = Rollback(target: target, bad: bad, reason: reason)
        trialServing = false
        // Rejected before anything moves: overseerd killed now never serves it again.
        actions.append(.persist)
        actions.append(.rollBack(to: target, replacing: bad))
    }

    private mutating func rollbackFinished(restored: String?, failure: String?, into actions: inout [Action]) {
        guard let rollback else { return }
        self.rollback = nil
        if let restored, restored == rollback.target.sha256 {
            if record.lastGood?.sha256 != restored {
                // A yank of a good release: the one before it becomes the last good.
                record.lastGood = rollback.target
                record.prior = nil
            }
            record.installed = rollback.target
            record.onTrial = false
            actions.append(.log(.notice, .upgradeRolledBack, "upgrade to \(rollback.bad.sha256.prefix(12)) rolled back: \(rollback.reason); \(restored.prefix(12)) is back in place", binary: restored))
        } else {
            let why = failure ?? "the file put back hashes to \(restored?.prefix(12) ?? "?"), not \(rollback.target.sha256.prefix(12))"
            // The rejected binary stays in place; it is not on trial any more (nothing to roll back to).
            record.onTrial = false
            if record.lastGood == rollback.bad {
                // A yanked good release that cannot be replaced serves on as the last good binary: not rejected.
                record.rejected.remove(rollback.bad.sha256)
                record.prior = nil
                yankRefusedFor = rollback.bad.sha256
            }
            actions.append(.log(.error, .rollbackFailed, "cannot put \(rollback.target.sha256.prefix(12)) back: \(why); \(rollback.bad.sha256.prefix(12)) stays installed", binary: rollback.bad.sha256))
        }
        actions.append(.persist)
    }

    private mutating func pass(_ trial: Release, into actions: inout [Action]) {
        trialServing = false
        if record.lastGood?.sha256 != trial.sha256 { record.prior = record.lastGood }
        record.lastGood = trial
        record.onTrial = false
        actions.append(.log(.notice, .probationPassed, "\(trial.sha256.prefix(12)) passed its probation: it is the last good binary now", binary: trial.sha256))
        actions.append(.persist)
    }

    private var watchdogPeriod: Duration? {
        guard let limit = probationWatchdog, limit > .zero else { return nil }
        return limit / 4
    }
}

extension BinaryLife.Action {
    static func log(_ level: Supervision.LogLevel, _ event: DaemonEvent, _ message: String, binary: String? = nil) -> Self {
        .log(LogLine(level, event, message, binary: binary))
    }
}

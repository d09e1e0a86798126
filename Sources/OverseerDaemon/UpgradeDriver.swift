import Logging
import OverseerCore
import OverseerFetch
import OverseerProtocol
import OverseerSystem
import SystemPackage

/// What the upgrade driver may ask of the daemon, and nothing more.
protocol UpgradeHost: AnyObject {
    /// Asks for a graceful restart, as the restart signal does.
    func requestRestart(reason: String)
    /// SHA-256 of the file at `path`, cached while the file is unchanged.
    func identify(_ path: String) -> String
    /// The SHA-256 of the file just installed at `path`, so that it is not hashed again.
    func remember(binaryID: String, of path: String)
    /// What upgrades say in STATUS= changed (a rollout decision).
    func upgradeStatusChanged()
    /// The binaries' life (installed, last good, rejected, the trial): read only.
    var binaryLife: BinaryLife { get }
    /// The SHA-256 of the binary the serving generation runs, if one serves.
    var servingBinary: String? { get }
    /// Hands an event to `BinaryLife`, through the daemon's one event queue.
    func binaryLifeEvent(_ event: BinaryLife.Event)
    /// Runs `work` once the upgrade state saved so far is on disk (nil), or with why it is not.
    func whenStateWritten(_ work: @escaping (String?) -> Void)
    /// The program as it would be started now (PATH looked up again).
    func resolvedProgram() throws -> String
    /// overseerd's environment less what systemd meant for overseerd itself.
    var inheritableEnvironment: [String] { get }
}

/// Carries out the `UpgradeCycle`'s actions: watching or fetching, staging,
/// verifying, installing, restarting. Every judgement is the cycle's,
/// `UpgradeVerification`'s or `BinaryLife`'s (which binary is installed, on
/// trial, rejected, rolled back to; the driver only reads it and hands it
/// events); every long piece of work (copying, hashing, syncing a candidate)
/// runs on a `BackgroundJob` or in a helper, so the event loop keeps answering
/// signals, notify, control and the watchdog. While a binary is on trial, a
/// verified release waits, staged, to be installed (`upgrade_held`): a new
/// release is only ever tried against a proven binary to go back to.
final class UpgradeDriver {
    let plan: Plan
    let loop: EventScheduling
    let helpers: HelperStarting
    unowned let host: UpgradeHost
    let logger: Logger
    var cycle: UpgradeCycle
    /// Events raised while an action is carried out, handled in order after it.
    private var pendingEvents: [UpgradeCycle.Event] = []
    var staging: StagingFile?
    var watcher: (FileWatcher, WatchToken)?
    var watchFailureLogged = false
    var lastTakenIdentity: [Int] = []
    /// The HTTP validators sent with the next conditional fetch.
    var validators = FetchValidators()
    var sidecars: [String: String] = [:]
    var signatureTimestamp: Int64?
    private var pollDeadline: DeadlineToken?
    private var retryDeadline: DeadlineToken?
    /// While a re-exec is being checked: polls wait.
    private var held = false
    private var pollDeferred = false
    /// Jobs running on their own threads.
    private(set) var backgroundJobs = 0
    /// The program file that gets replaced.
    let target: String
    /// While an upgrade restarts: the binary every new generation must be.
    var expectedBinary: String?
    /// Counts of upgrades and polls, for the metrics.
    var metrics = UpgradeMetrics()
    /// The release version (from a manifest) of the binary that serves (with
    /// `--no-restart` not yet the installed one), else of the installed one.
    var releaseVersion: String? {
        guard let serving = host.servingBinary else { return host.binaryLife.installed?.version }
        return host.binaryLife.version(of: serving)
    }
    /// What the last manifest said, and its release while it is fetched and checked.
    var manifestTracking = ManifestTracking()

    var settings: UpgradeSettings { plan.settings }

    init(plan: Plan, loop: EventScheduling, helpers: HelperStarting, host: UpgradeHost, logger: Logger) throws {
        self.plan = plan
        self.loop = loop
        self.helpers = helpers
        self.host = host
        self.logger = logger
        target = Installer.target(of: try host.resolvedProgram())
        cycle = UpgradeCycle(steps: UpgradeCycle.steps(for: plan.settings),
                             interval: plan.settings.effectiveInterval, restartAfterInstall: !plan.settings.noRestart)
        let stale = StagingFile.removeStale(beside: target)
        if !stale.isEmpty {
            logger.log(.notice, .stagingCleaned, "removed \(stale.count) staging file(s) an earlier overseerd left beside \(target)")
        }
        if case .network = settings.source, !settings.manifest, settings.sha256 == nil, !settings.sidecarChecksum,
           settings.minisignKey == nil {
            logger.log(.warning, .configurationWarning, "upgrades from \(settings.source) are checked by nothing but the transport: a truncated or altered download that passes the start check would be installed; give --checksum, --sha256 or --minisign-key")
        }
        if case let .file(path) = plan.settings.source { startWatching(path) }
        logger.log(.info, .upgradesConfigured, "upgrades from \(plan.settings.source) into \(target) (checks: \(cycle.steps.isEmpty ? "none" : cycle.steps.map(\.description).joined(separator: ", ")))")
        pollDue()
    }

    /// Nothing under way: no fetch, check or install (a re-exec may go ahead).
    var isIdle: Bool { cycle.state == .idle && staging == nil && backgroundJobs == 0 }

    /// The binaries rejected so far.
    var rejected: [String] { host.binaryLife.rejected.sorted() }

    func shutdown() {
        discardStaged()
        manifestTracking.trustStore?.flush()
    }

    /// Polls wait until `release()` (a re-exec is being checked).
    func hold() { held = true }

    func release() {
        held = false
        if pollDeferred {
            pollDeferred = false
            pollDue()
        }
    }

    /// The trial (or the rollback) has ended: a verified release that waited for it is installed now.
    func trialEnded() {
        feed(.trialEnded)
    }

    /// Removes the staged file at once: the "upgrade rejected" line that
    /// follows must be true when it is read.
    func discardStaged() {
        staging?.discard()
        staging = nil
    }

    // MARK: - Events

    func feed(_ event: UpgradeCycle.Event) {
        pendingEvents.append(event)
        // Events raised while acting (a failed step, a helper that cannot start) are
        // handled in order, after the current ones, not on the stack of their action.
        guard pendingEvents.count == 1 else { return }
        while let next = pendingEvents.first {
            let before = cycle.state
            let actions = cycle.handle(next, jitter: Double.random(in: 0 ..< 1))
            metrics.observe(next, before: before, actions: actions, now: MonotonicTimer.now)
            for action in actions { perform(action) }
            pendingEvents.removeFirst()
        }
    }

    /// Takes `sha256` off the rejected list, here and in the state directory.
    func forget(_ sha256: String) -> Bool {
        guard host.binaryLife.rejected.contains(sha256) else { return false }
        host.binaryLifeEvent(.forgotten(sha256: sha256))
        return true
    }

    /// New bytes are staged: what `BinaryLife` knows of them decides whether they are checked at all.
    func fetched(_ sha256: String) {
        let life = host.binaryLife
        let known: UpgradeCycle.Known? = life.installed?.sha256 == sha256 ? .installed
            : life.rejected.contains(sha256) ? .rejected : nil
        feed(.fetched(sha256: sha256, known: known))
    }

    func pollDue() {
        if held {
            pollDeferred = true
            return
        }
        feed(.pollDue)
    }

    // MARK: - Actions

    private func perform(_ action: UpgradeCycle.Action) {
        switch action {
        case .startFetch:
            startFetch()
        case let .verify(step):
            verify(step)
        case .discardStaged:
            discardStaged()
            sidecars = [:]
        case let .install(sha256):
            install(sha256)
        case let .requestRestart(sha256):
            expectedBinary = sha256
            host.requestRestart(reason: "upgrade to \(sha256.prefix(12))")
        case let .reject(sha256):
            host.binaryLifeEvent(.rejected(sha256: sha256))
        case let .schedulePoll(delay):
            if case let .file(path) = settings.source, watcher == nil { startWatching(path) }
            loop.cancel(pollDeadline)
            pollDeadline = loop.schedule(after: delay) { [unowned self] in
                pollDeadline = nil
                pollDue()
            }
        case let .scheduleInstallRetry(delay):
            loop.cancel(retryDeadline)
            retryDeadline = loop.schedule(after: delay) { [unowned self] in
                retryDeadline = nil
                feed(.installRetryDue)
            }
        case let .log(line):
            logger.log(line)
        }
    }

    /// Runs `work` on its own thread; `then` gets its result on the loop (counted for `isIdle`).
    func inBackground<Output: Sendable>(_ work: @escaping @Sendable () -> Output,
                                        then: @escaping (Output) -> Void) throws(SystemError) {
        backgroundJobs += 1
        do {
            try loop.inBackground(work) { [unowned self] output in
                backgroundJobs -= 1
                then(output)
            }
        } catch {
            backgroundJobs -= 1
            throw error
        }
    }

    func newStagingFile() -> StagingFile? {
        do {
            return try StagingFile(beside: target)
        } catch {
            feed(.fetchFailed(reason: "cannot create a staging file beside \(target): \(error.reason)"))
            return nil
        }
    }

    private func startFetch() {
        sidecars = [:]
        if settings.manifest {
            startManifestPoll()
            return
        }
        switch settings.source {
        case let .file(path):
            let identity = ProcFS.fileIdentity(path)
            if identity.isEmpty || identity == lastTakenIdentity {
                feed(.unchanged)
                return
            }
            startCopy(from: path, identity: identity)
        case let .network(url):
            guard let staging = newStagingFile() else { return }
            self.staging = staging
            var wanted: [String] = []
            if settings.sidecarChecksum { wanted.append(".sha256") }
            if settings.minisignKey != nil { wanted.append(".minisig") }
            startNetworkFetch(url, conditional: true, maxSize: settings.maxBinarySize, sidecars: wanted, into: staging) { [unowned self] result in
                fetchFinished(result, keepsValidators: true)
            }
        }
    }
}

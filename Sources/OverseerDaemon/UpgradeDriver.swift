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
    /// The program as it would be started now (PATH looked up again).
    func resolvedProgram() throws -> String
    /// overseerd's environment less what systemd meant for overseerd itself.
    var inheritableEnvironment: [String] { get }
}

/// Carries out the `UpgradeCycle`'s actions: watching or fetching, staging,
/// verifying, installing, restarting, rolling back. Every judgement is the
/// cycle's or `UpgradeVerification`'s; every long piece of work (copying,
/// hashing, syncing a candidate) runs on a `BackgroundJob` or in a helper, so
/// the event loop keeps answering signals, notify, control and the watchdog.
final class UpgradeDriver {
    private let plan: Plan
    private let loop: EventScheduling
    private let helpers: HelperStarting
    private unowned let host: UpgradeHost
    private let logger: Logger
    private var cycle: UpgradeCycle
    private var staging: StagingFile?
    private var watcher: (FileWatcher, WatchToken)?
    private var watchFailureLogged = false
    private var lastTakenIdentity: [Int] = []
    private var etag: String?
    private var lastModified: String?
    private var sidecars: [String: String] = [:]
    private var signatureTimestamp: Int64?
    private var pollDeadline: DeadlineToken?
    private var retryDeadline: DeadlineToken?
    /// While a re-exec is being checked: polls wait.
    private var held = false
    private var pollDeferred = false
    /// Jobs running on their own threads.
    private(set) var backgroundJobs = 0
    /// The program file that gets replaced.
    private let target: String
    /// While an upgrade restarts: the binary every new generation must be.
    private(set) var expectedBinary: String?
    /// What was installed before the binary now being installed or on probation.
    private var previousBinary: String?
    /// The binary on probation, the one before it, and when (wall clock, s) it started serving.
    private var onProbation: (sha256: String, previous: String, since: Int64)?
    /// The release version (from a manifest) installed, and the one before it.
    private var installedVersion: String?
    /// Counts of upgrades and polls, for the metrics.
    private(set) var metrics = UpgradeMetrics()
    /// The installed binary's release version (from a manifest), if known.
    var releaseVersion: String? { installedVersion }
    private var previousVersion: String?
    /// The manifest's release being fetched and checked.
    private var pendingRelease: (version: String, sha256: String)?
    /// The manifest's validators, kept for the next poll once its release is dealt with.
    private var manifestValidators: (etag: String?, lastModified: String?) = (nil, nil)
    /// The last decision line about the manifest: said once, not at every poll.
    private var lastManifestNote: String?
    /// What the last manifest said, for `status`.
    private var manifestSeen: (version: String, bucket: Int, percent: Int, decision: String)?
    /// What was last written to the state directory.
    private var savedState: String?
    private var stateFailureLogged = false
    /// The installed binary was still on probation when this overseerd started.
    private(set) var startsOnProbation = false
    private var statePath: String? { settings.stateDirectory.map { $0 + "/" + UpgradeState.fileName } }

    var settings: UpgradeSettings { plan.settings }

    /// - Parameter rejected: binaries an earlier image of overseerd rejected.
    init(plan: Plan, loop: EventScheduling, helpers: HelperStarting, host: UpgradeHost, logger: Logger,
         rejected: [String] = []) throws {
        self.plan = plan
        self.loop = loop
        self.helpers = helpers
        self.host = host
        self.logger = logger
        target = Installer.target(of: try host.resolvedProgram())
        cycle = UpgradeCycle(installed: host.identify(target), steps: UpgradeCycle.steps(for: plan.settings),
                             interval: plan.settings.effectiveInterval, restartAfterInstall: !plan.settings.noRestart)
        cycle.remember(rejected: rejected)
        loadState()
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
    var rejected: [String] { cycle.rejected.sorted() }

    /// One line for `overseerd status`.
    var summary: String {
        let state: String = switch cycle.state {
        case .idle: "idle"
        case .fetching: "fetching"
        case let .verifying(step, sha256): "verifying \(sha256.prefix(12)) (\(step))"
        case let .installing(sha256): "installing \(sha256.prefix(12))"
        case let .installPending(sha256, attempts, reason):
            "install of \(sha256.prefix(12)) pending after \(attempts) failed attempt(s): \(reason)"
        case let .restarting(sha256): "restarting into \(sha256.prefix(12))"
        }
        var release = ""
        if settings.manifest {
            release = ", release \(installedVersion ?? "unknown")"
            if let seen = manifestSeen {
                release += "; manifest \(seen.version), bucket \(seen.bucket) of \(seen.percent) %: \(seen.decision)"
            }
        }
        return "from \(settings.manifest ? "manifest " : "")\(settings.source), installed \(cycle.installed.prefix(12))\(release), \(state), \(cycle.rejected.count) rejected"
    }

    /// The release fields of `overseerd status --json`, with `--manifest`.
    var releaseFields: [(String, JSONText)] {
        guard settings.manifest else { return [] }
        var fields: [(String, JSONText)] = [("release_version", installedVersion.map { .string($0) } ?? .null)]
        if let seen = manifestSeen {
            fields += [("manifest_version", .string(seen.version)), ("bucket", .integer(Int64(seen.bucket))),
                       ("staging_percent", .integer(Int64(seen.percent))), ("rollout", .string(seen.decision))]
        }
        return fields
    }

    /// Why a verified binary waits to be installed, if one does.
    var pendingInstall: String? {
        guard case let .installPending(sha256, attempts, reason) = cycle.state else { return nil }
        return "\(sha256): \(attempts) failed attempt(s), last: \(reason)"
    }

    func shutdown() {
        discardStaged()
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

    /// Removes the staged file at once: the "upgrade rejected" line that
    /// follows must be true when it is read.
    private func discardStaged() {
        staging?.discard()
        staging = nil
    }

    // MARK: - Events

    private func feed(_ event: UpgradeCycle.Event) {
        let before = cycle.state
        let actions = cycle.handle(event, jitter: Double.random(in: 0 ..< 1))
        metrics.observe(event, before: before, actions: actions, now: MonotonicTimer.now)
        for action in actions { perform(action) }
        saveState()
    }

    /// Takes `sha256` off the rejected list, here and in the state directory.
    func forget(_ sha256: String) -> Bool {
        defer { saveState() }
        return cycle.forget(sha256)
    }

    // MARK: - State across restarts

    private func loadState() {
        guard let path = statePath, let directory = settings.stateDirectory else {
            logger.log(.notice, .stateWarning, "no --state-directory (nor $STATE_DIRECTORY): rejected binaries and probation are forgotten when overseerd restarts")
            return
        }
        do {
            try Posix.makeDirectory(directory, mode: 0o700)
        } catch {
            logger.log(.warning, .stateWarning, "cannot create the state directory: \(error); upgrade state is kept in memory only")
            return
        }
        guard let text = SmallFile.read(path, limit: 1 << 20) else { return }
        let state: UpgradeState
        do {
            state = try UpgradeState(parsing: text)
        } catch {
            logger.log(.warning, .stateWarning, "\(path) ignored: \(error)")
            return
        }
        savedState = state.encoded
        cycle.remember(rejected: Array(state.rejected))
        previousBinary = state.previous
        installedVersion = state.version
        previousVersion = state.previousVersion
        if let probation = state.probation, probation.sha256 == cycle.installed, settings.probation > .zero,
           Posix.wallClockSeconds - probation.since < settings.probation.totalNanoseconds / 1_000_000_000 {
            onProbation = (probation.sha256, state.previous ?? "", probation.since)
            startsOnProbation = true
            logger.log(.notice, .probationStarted, "the installed binary \(probation.sha256.prefix(12)) is still on probation (since \(Posix.wallClockSeconds - probation.since) s): a failure puts the previous one back", binary: probation.sha256)
        }
        if !state.rejected.isEmpty {
            logger.log(.info, .stateLoaded, "\(state.rejected.count) rejected binary(ies) remembered from \(path) (overseerd forget SHA256 to clear one)")
        }
    }

    /// Writes the state when it changed; a failure is said once, and the state stays in memory.
    private func saveState() {
        guard let path = statePath else { return }
        let state = UpgradeState(rejected: cycle.rejected,
                                 probation: onProbation.map { .init(sha256: $0.sha256, since: $0.since) },
                                 previous: previousBinary, version: installedVersion, previousVersion: previousVersion)
        let text = state.encoded
        guard text != savedState else { return }
        do {
            try AtomicFile.write(text, to: path)
            savedState = text
            stateFailureLogged = false
        } catch {
            if !stateFailureLogged { logger.log(.warning, .stateWarning, "cannot write \(path): \(error); upgrade state is kept in memory only") }
            stateFailureLogged = true
        }
    }

    private func pollDue() {
        if held {
            pollDeferred = true
            return
        }
        feed(.pollDue)
    }

    /// The generation started for an upgrade became ready, or did not.
    /// Returns true when it was this upgrade's restart and it succeeded: the
    /// new binary now serves, on probation.
    @discardableResult
    func restartFinished(binary: String, succeeded: Bool, reason: String?) -> Bool {
        guard case let .restarting(sha256) = cycle.state, binary == sha256 else { return false }
        expectedBinary = nil
        feed(.restartFinished(succeeded: succeeded, reason: reason))
        if succeeded, let previous = previousBinary, settings.probation > .zero {
            onProbation = (sha256, previous, Posix.wallClockSeconds)
            saveState()
        }
        return succeeded
    }

    /// The binary on probation served long enough.
    func probationPassed() {
        guard let (sha256, _, _) = onProbation else { return }
        onProbation = nil
        saveState()
        logger.log(.notice, .probationPassed, "upgrade to \(sha256.prefix(12)) passed its probation; \(Installer.previousPath(of: target)) stays as the way back", binary: sha256)
    }

    /// The binary on probation failed it (`reason`: how its generation did): the previous
    /// binary is put back and the failed one rejected. Returns the line to log
    /// once the previous binary serves again, nil when it could not be put back.
    func failedProbation(generation: Int, reason: String) -> String? {
        guard let (bad, previous, since) = onProbation else { return nil }
        onProbation = nil
        let seconds = max(0, Posix.wallClockSeconds - since)
        defer { saveState() }
        do {
            try Installer.rollback(target)
        } catch {
            logger.log(.error, .rollbackFailed, "\(error) — the failed binary stays installed; overseerd exits if it fails again")
            return nil
        }
        let restored = host.identify(target)
        cycle.failedProbation(bad, restored: restored)
        metrics.rolledBackOutsideCycle()
        previousBinary = nil
        if previousVersion != nil {
            installedVersion = previousVersion
            previousVersion = nil
        }
        if restored != previous {
            logger.log(.warning, .rollbackFailed, "\(Installer.previousPath(of: target)) is \(restored.prefix(12)), not \(previous.prefix(12)) as installed before", binary: restored)
        }
        return "upgrade to \(bad.prefix(12)) rolled back: generation \(generation) \(reason) \(seconds) s after cutover; \(restored.prefix(12)) serves again"
    }

    private func startWatching(_ path: String) {
        do {
            let watcher = try FileWatcher(path: path)
            let token = try loop.watch(watcher.fd) { [unowned self] in fileEvent() }
            self.watcher = (watcher, token)
            watchFailureLogged = false
        } catch {
            // Tried again at every poll; said once until it works.
            guard !watchFailureLogged else { return }
            watchFailureLogged = true
            logger.log(.warning, .watchFallback, "cannot watch \(path) with inotify (\(error)); polling every \(settings.effectiveInterval.shortDescription) instead")
        }
    }

    /// A rename into place, or a writer closing the file, makes it complete: it
    /// is taken at once. A write in progress is left alone until then.
    private func fileEvent() {
        guard let (watcher, token) = watcher else { return }
        switch watcher.drain() {
        case .none, .beingWritten:
            return
        case .directoryGone:
            loop.unwatch(token)
            watcher.close()
            self.watcher = nil
            logger.log(.warning, .watchFallback, "the directory of \(settings.source) went away; polling until it is back")
        case .renamedIntoPlace, .closedAfterWriting:
            guard case let .file(path) = settings.source else { return }
            let identity = ProcFS.fileIdentity(path)
            if !identity.isEmpty, identity != lastTakenIdentity { pollDue() }
        }
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
        case .rollback:
            rollback()
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

    /// Runs `work` on its own thread; `then` gets its result on the loop.
    private func inBackground<Output: Sendable>(_ work: @escaping @Sendable () -> Output,
                                                then: @escaping (Output) -> Void) throws(SystemError) {
        let job = try BackgroundJob.start(work)
        backgroundJobs += 1
        var token: WatchToken?
        do {
            token = try loop.watch(job.fd) { [unowned self] in
                guard let output = job.finish() else { return }
                if let token { loop.unwatch(token) }
                backgroundJobs -= 1
                then(output)
            }
        } catch {
            // The thread goes on and finishes on its own; its result is dropped.
            backgroundJobs -= 1
            throw error
        }
    }

    private func newStagingFile() -> StagingFile? {
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

    /// Copies the file at `path` into a new staging file on a thread of its own.
    /// `identity`, for the watched file, is remembered once it is taken.
    private func startCopy(from path: String, identity: [Int]?) {
        guard let staging = newStagingFile() else { return }
        self.staging = staging
        let limit = settings.maxBinarySize
        struct Intake: Sendable {
            let result: Result<(size: Int64, sha256: String), StagingError>
            let sidecars: [String: String]
        }
        do {
            try inBackground({ () -> Intake in
                let result: Result<(size: Int64, sha256: String), StagingError>
                do {
                    let copied = try staging.copy(from: path, limit: limit)
                    try staging.seal()
                    result = .success(copied)
                } catch let error as StagingError {
                    result = .failure(error)
                } catch {
                    result = .failure(StagingError("cannot reopen the staging file \(staging.path): \(error)"))
                }
                var sidecars: [String: String] = [:]
                for suffix in [".sha256", ".minisig"] {
                    if let text = SmallFile.read(path + suffix) { sidecars[suffix] = text }
                }
                return Intake(result: result, sidecars: sidecars)
            }, then: { [unowned self] (intake: Intake) in
                switch intake.result {
                case let .success((_, sha256)):
                    if let identity { lastTakenIdentity = identity }
                    sidecars = intake.sidecars
                    feed(.fetched(sha256: sha256))
                case let .failure(error) where error.isStillWritten:
                    logger.log(.info, .upgradeUnchanged, "\(error)")
                    discardStaged()
                    feed(.unchanged)
                case let .failure(error):
                    // Not taken again until it changes: a FIFO or an oversized file would fail the same way each poll.
                    if let identity { lastTakenIdentity = identity }
                    feed(.fetchFailed(reason: "\(error)"))
                }
            })
        } catch {
            feed(.fetchFailed(reason: "cannot start copying \(path): \(error)"))
        }
    }

    /// Runs overseerd-fetch for `url` into `staging`; `conditional` sends the validators of the last download.
    private func startNetworkFetch(_ url: String, conditional: Bool, maxSize: Int64, sidecars wanted: [String],
                                   into staging: StagingFile, completion: @escaping (HelperResult) -> Void) {
        guard let helper = plan.fetchHelper else {
            feed(.abandoned(reason: "no overseerd-fetch to fetch \(url) with"))
            return
        }
        let limit = settings.fetchTimeout
        var arguments = [helper, "--output-fd", "3", "--max-size", String(maxSize),
                         "--max-time", String(max(1, limit.totalNanoseconds / 1_000_000_000))]
        if conditional, let etag { arguments += ["--etag", etag] }
        if conditional, let lastModified { arguments += ["--last-modified", lastModified] }
        for suffix in wanted { arguments += ["--sidecar", suffix] }
        if let endpoint = settings.s3Endpoint { arguments += ["--s3-endpoint", endpoint] }
        if let api = settings.githubAPIURL { arguments += ["--github-api-url", api] }
        if let pattern = settings.assetPattern { arguments += ["--asset-pattern", pattern] }
        arguments.append(url)
        // Its own --max-time ends a slow transfer; this ends a helper that hangs anyway.
        let request = HelperRequest(label: "overseerd-fetch", arguments: arguments, environment: host.inheritableEnvironment,
                                    extraFD: staging.fd, user: plan.fetchUser, timeout: limit + .seconds(5))
        do {
            try helpers.start(request, completion: completion)
        } catch {
            feed(.fetchFailed(reason: "cannot start \(helper): \(error)"))
        }
    }

    private func fetchFinished(_ result: HelperResult, keepsValidators: Bool) {
        let line = result.output.split(separator: "\n").last.map(String.init) ?? ""
        guard let report = try? FetchReport(parsing: line) else {
            feed(.fetchFailed(reason: "overseerd-fetch ended with \(result.exit)\(result.timedOut ? " (killed at its deadline)" : "") and no report"))
            return
        }
        switch (result.exit, report.result) {
        case (.exited(0), .notModified):
            feed(.unchanged)
        case (.exited(0), .downloaded):
            guard let staging else {
                feed(.abandoned(reason: "the download's staging file is gone"))
                return
            }
            let size: Int64
            do {
                try staging.seal()
                size = try staging.size()
            } catch {
                feed(.fetchFailed(reason: "cannot read back the download in \(staging.path): \(error)"))
                return
            }
            let reported: String
            switch UpgradeVerification.fetchedHash(reported: report.sha256, reportedSize: report.bytes, stagedSize: size,
                                                   limit: settings.maxBinarySize) {
            case let .success(sha256): reported = sha256
            case let .failure(rejection):
                feed(.fetchFailed(reason: rejection.description))
                return
            }
            // overseerd-fetch parses TLS and HTTP from the network: a pinned --sha256 is
            // checked against bytes overseerd hashes itself, not against what it reports.
            let path = staging.path
            do {
                try inBackground({ () -> Result<String, SystemError> in
                    Result { () throws(SystemError) in try BinaryIdentity.sha256(ofFileAt: path) }
                }, then: { [unowned self] hashed in
                    switch hashed {
                    case let .success(sha256) where sha256 == reported:
                        if keepsValidators {
                            etag = report.etag
                            lastModified = report.lastModified
                        }
                        for suffix in [".sha256", ".minisig"] {
                            if let text = report.sidecar(suffix) { sidecars[suffix] = text }
                        }
                        feed(.fetched(sha256: sha256))
                    case let .success(sha256):
                        feed(.fetchFailed(reason: "overseerd-fetch reported sha256 \(reported.prefix(16))… but the staged bytes hash to \(sha256.prefix(16))…"))
                    case let .failure(error):
                        feed(.fetchFailed(reason: "cannot read the download back from \(path) to hash it: \(error.reason)"))
                    }
                })
            } catch {
                feed(.fetchFailed(reason: "cannot start hashing the download: \(error)"))
            }
        default:
            // overseerd-fetch's message can quote what a server sent: escaped, bounded.
            var reason = report.message.map { EscapedText.escape($0) } ?? "overseerd-fetch ended with \(result.exit)"
            if keepsValidators, report.kind == "size", report.etag != nil || report.lastModified != nil {
                // Like a rejected hash: the same body is not downloaded again, the next poll asks with its validators.
                etag = report.etag
                lastModified = report.lastModified
                reason += "; not downloaded again until it changes"
            }
            feed(.fetchFailed(reason: reason))
        }
    }

    private func verify(_ step: UpgradeCycle.Step) {
        guard let staging, case let .verifying(_, sha256) = cycle.state else {
            feed(.abandoned(reason: "\(step): nothing is staged"))
            return
        }
        switch step {
        case .checksum:
            let reason = UpgradeVerification.checksum(actual: sha256, configured: pendingRelease?.sha256 ?? settings.sha256,
                                                      sidecar: sidecars[".sha256"])
            feed(reason.map { .stepFailed(step, reason: $0) } ?? .stepPassed(step))
        case .signature:
            verifySignature(staging)
        case .check:
            runStartCheck(staging)
        case .preUpgrade:
            guard let command = settings.preUpgrade else {
                feed(.stepFailed(step, reason: "no --pre-upgrade command is configured"))
                return
            }
            runHelper(step: step, HelperRequest(
                label: "pre-upgrade command",
                arguments: ["/bin/sh", "-c", command + " \"$1\"", "overseerd-pre-upgrade", staging.path],
                environment: host.inheritableEnvironment, timeout: .seconds(300))) { result in
                UpgradeVerification.commandCheck(exit: result.exit)
            }
        }
    }

    private func verifySignature(_ staging: StagingFile) {
        guard let key = plan.key else {
            feed(.stepFailed(.signature, reason: "no --minisign-key is loaded"))
            return
        }
        guard let text = sidecars[".minisig"] else {
            feed(.stepFailed(.signature, reason: "no .minisig signature beside the binary"))
            return
        }
        let signature: Minisign.Signature
        do {
            signature = try Minisign.Signature(parsing: text)
        } catch {
            feed(.stepFailed(.signature, reason: error.description))
            return
        }
        let path = staging.path
        do {
            // BLAKE2b over the whole file: as long as a hash, so off the loop.
            try inBackground({ () -> String? in
                do {
                    try Minisign.verify(fileAt: path, signature: signature, key: key)
                    return nil
                } catch {
                    return "\(error)"
                }
            }, then: { [unowned self] failure in
                if let failure {
                    feed(.stepFailed(.signature, reason: failure))
                    return
                }
                let installedAt = Int64(ProcFS.modificationTime(target))
                if let reason = UpgradeVerification.antiReplay(signedAt: signature.timestamp, installedAt: installedAt) {
                    feed(.stepFailed(.signature, reason: reason))
                    return
                }
                signatureTimestamp = signature.timestamp
                feed(.stepPassed(.signature))
            })
        } catch {
            feed(.abandoned(reason: "cannot start checking the signature: \(error)"))
        }
    }

    private func runStartCheck(_ staging: StagingFile) {
        do {
            try staging.setMode(0o700)
        } catch {
            feed(.abandoned(reason: "cannot make the staged file executable: \(error)"))
            return
        }
        switch settings.check {
        case .none:
            feed(.stepPassed(.check))
        case .token:
            var bytes = [UInt8](repeating: 0, count: 16)
            for index in bytes.indices { bytes[index] = UInt8.random(in: 0 ... 255) }
            let token = bytes.map { String($0 >> 4, radix: 16) + String($0 & 0xf, radix: 16) }.joined()
            runHelper(step: .check, HelperRequest(
                label: "start check", arguments: [staging.path],
                environment: host.inheritableEnvironment + ["\(EnvironmentName.checkToken)=\(token)"],
                timeout: settings.checkTimeout)) { result in
                UpgradeVerification.tokenCheck(exit: result.exit, output: result.output, token: token)
            }
        case let .exec(arguments):
            runHelper(step: .check, HelperRequest(
                label: "start check", arguments: [staging.path] + arguments,
                environment: host.inheritableEnvironment, timeout: settings.checkTimeout)) { result in
                UpgradeVerification.commandCheck(exit: result.exit)
            }
        }
    }

    /// Runs a helper for `step`; `judge` returns nil to pass or the reason to fail.
    private func runHelper(step: UpgradeCycle.Step, _ request: HelperRequest, judge: @escaping (HelperResult) -> String?) {
        let timeout = request.timeout
        do {
            try helpers.start(request) { [unowned self] result in
                if result.timedOut {
                    feed(.stepFailed(step, reason: "no answer within \(timeout.shortDescription)"))
                } else if let reason = judge(result) {
                    feed(.stepFailed(step, reason: reason))
                } else {
                    feed(.stepPassed(step))
                }
            }
        } catch {
            feed(.stepFailed(step, reason: "cannot run it: \(error)"))
        }
    }

    private func install(_ sha256: String) {
        guard let staging else {
            feed(.abandoned(reason: "the verified file is no longer staged"))
            return
        }
        let target = target
        let modificationTime = signatureTimestamp
        do {
            // fsync of up to --max-binary-size: off the loop.
            try inBackground({ () -> String? in
                do {
                    try Installer.install(staging, over: target, modificationTime: modificationTime)
                    return nil
                } catch {
                    return "\(error)"
                }
            }, then: { [unowned self] failure in
                if let failure {
                    feed(.installFailed(reason: failure))
                    return
                }
                self.staging = nil
                signatureTimestamp = nil
                previousBinary = cycle.installed
                if let release = pendingRelease, release.sha256 == sha256 {
                    previousVersion = installedVersion
                    installedVersion = release.version
                    pendingRelease = nil
                    etag = manifestValidators.etag
                    lastModified = manifestValidators.lastModified
                }
                host.remember(binaryID: sha256, of: target)
                feed(.installed)
            })
        } catch {
            feed(.installFailed(reason: "cannot start installing: \(error)"))
        }
    }

    // MARK: - Release manifests: what the manifest poll needs of the driver

    /// Remembered now, used once the manifest's release is dealt with (a 304 before
    /// its binary was fetched would leave the release behind for good).
    private func noteManifestValidators(etag: String?, lastModified: String?) {
        manifestValidators = (etag, lastModified)
        self.etag = nil
        self.lastModified = nil
    }

    private func keepManifestValidators() {
        etag = manifestValidators.etag
        // With an ETag, If-Modified-Since adds nothing but a risk: a manifest replaced
        // within the same second has the same Last-Modified (S3 emulators answer 304 to it).
        lastModified = etag == nil ? manifestValidators.lastModified : nil
    }

    /// A decision about the manifest is said once, not at every poll.
    private func manifestNote(_ level: Supervision.LogLevel, _ event: DaemonEvent, _ text: String) {
        guard text != lastManifestNote else { return }
        lastManifestNote = text
        logger.log(Logger.level(level), event, text)
        host.upgradeStatusChanged()
    }

    /// For STATUS=: the release installed and what the manifest's rollout means here.
    var rolloutStatus: String? {
        guard settings.manifest else { return nil }
        var text = "release \(installedVersion ?? "unknown")"
        if let seen = manifestSeen, seen.decision != "up to date" {
            text += ", manifest \(seen.version) \(seen.decision) (bucket \(seen.bucket) of \(seen.percent) %)"
        }
        return text
    }

    /// Fetches the manifest's binary (a path or a URL) and checks it against the manifest's sha256.
    private func fetchRelease(version: String, sha256: String, from url: String) {
        pendingRelease = (version, sha256)
        if url.hasPrefix("/") {
            startCopy(from: url, identity: nil)
            return
        }
        guard let staging = newStagingFile() else { return }
        self.staging = staging
        startNetworkFetch(url, conditional: false, maxSize: settings.maxBinarySize, sidecars: [], into: staging) { [unowned self] result in
            fetchFinished(result, keepsValidators: false)
        }
    }

    /// The installed release was yanked: the previous binary goes back and the yanked one is rejected.
    private func rollBackYanked(reason: String) {
        let yanked = cycle.installed
        do {
            try Installer.rollback(target)
        } catch {
            logger.log(.error, .rollbackFailed, "\(error) — the yanked release stays installed")
            return
        }
        let restored = host.identify(target)
        cycle.failedProbation(yanked, restored: restored)
        metrics.rolledBackOutsideCycle()
        installedVersion = previousVersion
        previousVersion = nil
        previousBinary = nil
        saveState()
        host.requestRestart(reason: reason)
    }

    private func rollback() {
        do {
            try Installer.rollback(target)
            let restored = host.identify(target)
            cycle.rolledBack(to: restored)
            expectedBinary = nil
            logger.log(.notice, .upgradeRolledBack, "rolled back \(target) to \(restored.prefix(12))", binary: restored)
        } catch {
            logger.log(.error, .rollbackFailed, "\(error) — the failed binary stays installed; the serving generation keeps running")
        }
    }
}

/// Staged rollouts: with `--manifest`, a poll reads the release manifest, and
/// `RolloutDecision` says whether this host takes its release now.
extension UpgradeDriver {
    func startManifestPoll() {
        switch settings.source {
        case let .file(path):
            guard let bytes = SmallFile.bytes(path, limit: ReleaseManifest.maximumSize + 1) else {
                feed(.unchanged)
                return
            }
            manifestArrived(bytes, signature: SmallFile.read(path + ".minisig"), from: path)
        case let .network(url):
            guard let staging = newStagingFile() else { return }
            self.staging = staging
            startNetworkFetch(url, conditional: true, maxSize: Int64(ReleaseManifest.maximumSize),
                              sidecars: settings.minisignKey != nil ? [".minisig"] : [], into: staging) { [unowned self] result in
                manifestFetched(result, from: url)
            }
        }
    }

    private func manifestFetched(_ result: HelperResult, from url: String) {
        let line = result.output.split(separator: "\n").last.map(String.init) ?? ""
        let report = try? FetchReport(parsing: line)
        switch (result.exit, report?.result) {
        case (.exited(0), .notModified?):
            discardStaged()
            feed(.unchanged)
        case let (.exited(0), .downloaded?):
            let bytes = staging.flatMap { SmallFile.bytes($0.path, limit: ReleaseManifest.maximumSize + 1) }
            discardStaged()
            guard let bytes, let report else {
                feed(.fetchFailed(reason: "cannot read back the manifest downloaded from \(url)"))
                return
            }
            noteManifestValidators(etag: report.etag, lastModified: report.lastModified)
            manifestArrived(bytes, signature: report.sidecar(".minisig"), from: url)
        default:
            let reason = report?.message.map { EscapedText.escape($0) } ?? "overseerd-fetch ended with \(result.exit)"
            feed(.fetchFailed(reason: "manifest: \(reason)"))
        }
    }

    /// Checks, reads and decides on a manifest; the cycle is in `.fetching`.
    private func manifestArrived(_ bytes: [UInt8], signature: String?, from location: String) {
        if let key = plan.key {
            guard let signature else {
                refuseManifest("there is no .minisig signature beside it", from: location)
                return
            }
            do {
                try Minisign.verify(contents: bytes, signature: try Minisign.Signature(parsing: signature), key: key)
            } catch {
                refuseManifest("its signature: \(error)", from: location)
                return
            }
        }
        let manifest: ReleaseManifest
        do {
            manifest = try ReleaseManifest(parsing: bytes)
        } catch {
            refuseManifest("\(error)", from: location)
            return
        }
        let bucket = RolloutBucket.bucket(hostID: plan.hostID ?? "", version: manifest.version)
        let facts = RolloutDecision.Facts(manifestVersion: manifest.version, stagingPercent: manifest.stagingPercent,
                                          yanked: manifest.yanked, installedVersion: installedVersion,
                                          previousVersion: previousVersion, bucket: bucket)
        let version = EscapedText.escape(manifest.version, limit: 128)
        switch RolloutDecision.decide(facts) {
        case .upToDate:
            seen(manifest, bucket, "up to date")
            keepManifestValidators()
            feed(.unchanged)
        case let .waitForStage(bucket, percent):
            seen(manifest, bucket, "waiting for its stage")
            keepManifestValidators()
            manifestNote(.info, .rolloutDecision, "release \(version) waits for its stage: this host's bucket \(bucket) is not below \(percent) %")
            feed(.unchanged)
        case let .reject(why):
            seen(manifest, bucket, "refused")
            keepManifestValidators()
            refuseManifest(EscapedText.escape(why), from: location)
        case let .rollBackToPrevious(why):
            seen(manifest, bucket, "yanked, rolled back")
            keepManifestValidators()
            manifestNote(.notice, .rolloutDecision, "release \(EscapedText.escape(why))")
            rollBackYanked(reason: "release \(version) yanked")
            feed(.unchanged)
        case let .take(why):
            seen(manifest, bucket, "taken")
            if manifest.sha256 == cycle.installed {
                // Installed already (by hand, or the state was lost): only the version was unknown.
                installedVersion = manifest.version
                saveState()
                keepManifestValidators()
                feed(.unchanged)
                return
            }
            let url: String
            do { url = try manifest.binaryURL(manifestURL: location, os: "linux", arch: plan.architecture) } catch {
                refuseManifest("\(error)", from: location)
                return
            }
            manifestNote(.notice, .rolloutDecision, "taking release \(version) (\(EscapedText.escape(why))) from \(EscapedText.escape(url))")
            fetchRelease(version: manifest.version, sha256: manifest.sha256, from: url)
        }
    }

    private func seen(_ manifest: ReleaseManifest, _ bucket: Int, _ decision: String) {
        manifestSeen = (EscapedText.escape(manifest.version, limit: 128), bucket, manifest.stagingPercent, decision)
    }

    private func refuseManifest(_ why: String, from location: String) {
        manifestNote(.error, .upgradePollFailed, "manifest from \(EscapedText.escape(location)) refused: \(why); the installed binary stays")
        feed(.unchanged)
    }
}

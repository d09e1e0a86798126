import Logging
import OverseerCore
import OverseerFetch
import OverseerProtocol
import OverseerSystem

/// Staged rollouts: with `--manifest`, a poll reads the release manifest, and
/// `RolloutDecision` says whether this host takes its release now.
extension UpgradeDriver {
    /// What the last manifest said, and its release while it is fetched and checked.
    struct ManifestTracking {
        /// The manifest's release being fetched and checked.
        var pendingRelease: (version: String, sha256: String)?
        /// The last decision line about the manifest: said once, not at every poll.
        var lastNote: String?
        /// What the last manifest said, for `status`.
        var seen: (version: String, bucket: Int, percent: Int, decision: String)?
        /// Which manifests are followed (`ManifestTrust`), and where that is kept; set at the first poll.
        var trust: ManifestTrust?
        var trustStore: ManifestTrustStore?
        /// The `expires` of the newest manifest whose signatures passed (taken, or refused as expired): the metric.
        var expires: Int64?
        /// The newest manifest has expired (said once, until a fresh one is taken).
        var expired = false
        /// The binary's exact size the manifest's release gave.
        var pendingSize: Int64?
    }

    /// The name a manifest must carry: `--release-name`, else the program's file name as
    /// started (`/usr/local/bin/app` → `app`), not that of the file a symbolic link leads to
    /// (`app-2.0.0` in a releases directory).
    var releaseName: String {
        let program = (try? host.resolvedProgram()) ?? target
        return settings.releaseName ?? String(program.split(separator: "/").last ?? "")
    }

    /// Reads the trust kept in the state directory, once, before the first manifest.
    private func prepareTrust() {
        guard manifestTracking.trust == nil else { return }
        var record = ManifestTrust.Record()
        if let directory = settings.stateDirectory {
            let store = ManifestTrustStore(directory: directory, program: target, logger: logger) { [unowned self] work, then throws(SystemError) in
                try inBackground(work, then: then)
            }
            record = store.load()
            manifestTracking.trustStore = store
        }
        let commandLine = ManifestTrust.KeySet(keys: plan.keys.map(\.base64), required: settings.signaturesRequired)
        let trust = ManifestTrust(commandLine: commandLine, record: record)
        if record.rotated != nil, trust.rotated == nil {
            logger.log(.notice, .manifestKeysChanged, "the keys a manifest rotated to were installed over other --minisign-key keys than these: the command line's \(commandLine) are used")
        } else if let rotated = trust.rotated {
            logger.log(.notice, .manifestKeysChanged, "manifests must be signed by the keys a manifest rotated to (\(rotated)), not the command line's (overseerd forget-keys goes back to them)")
        }
        manifestTracking.trust = trust
        manifestTracking.expires = trust.expires
    }

    /// `overseerd forget-keys`: back to the command line's keys; what was done, in one line, once it is on
    /// disk: forgotten in memory only, the rotated keys would be trusted again after a restart.
    func forgetKeys(completion: @escaping (Bool, String) -> Void) {
        guard settings.manifest else { return completion(false, "no --manifest: there are no manifest keys") }
        prepareTrust()
        guard var trust = manifestTracking.trust else { return completion(false, "no --manifest: there are no manifest keys") }
        guard trust.forgetKeys() else {
            return completion(false, "manifests are signed by the command line's keys already (\(trust.commandLine))")
        }
        manifestTracking.trust = trust
        let line = "manifest keys forgotten: manifests must be signed by the command line's keys again (\(trust.commandLine))"
        logger.log(.notice, .manifestKeysChanged, line)
        host.upgradeStatusChanged()
        guard let store = manifestTracking.trustStore else { return completion(true, line) }
        store.save(trust.record)
        store.whenWritten { failure in
            guard let failure else { return completion(true, line) }
            completion(false, "\(line), but only until overseerd restarts: \(store.path) cannot be written (\(failure)); after a restart the rotated keys are trusted again unless it can be")
        }
    }

    /// Nothing new came (304, or a failed poll): the manifest taken last may have expired meanwhile.
    func noteManifestUnchanged() {
        guard let trust = manifestTracking.trust, let at = trust.expires, trust.hasExpired(now: Posix.wallClockSeconds) else { return }
        manifestExpired(at, from: "\(settings.source)")
    }

    private func manifestExpired(_ at: Int64, from location: String) {
        manifestTracking.expires = at
        guard !manifestTracking.expired else { return }
        manifestTracking.expired = true
        manifestNote(.warning, .manifestExpired, "manifest from \(EscapedText.escape(location)) expired at \(RFC3339.format(at)) and nothing newer came: nothing is installed until the publisher signs a fresh one; the installed binary stays")
    }

    func startManifestPoll() {
        prepareTrust()
        switch settings.source {
        case let .file(path):
            guard let bytes = SmallFile.bytes(path, limit: ReleaseManifest.maximumSize + 1) else {
                noteManifestUnchanged()
                feed(.unchanged)
                return
            }
            manifestArrived(bytes, signature: SmallFile.read(path + ".minisig"), from: path)
        case let .network(url):
            guard let staging = newStagingFile() else { return }
            self.staging = staging
            startNetworkFetch(url, conditional: true, maxSize: Int64(ReleaseManifest.maximumSize),
                              sidecars: plan.keys.isEmpty ? [] : [".minisig"], into: staging) { [unowned self] result in
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
            noteManifestUnchanged()
            feed(.unchanged)
        case (.exited(0), .downloaded?):
            let bytes = staging.flatMap { SmallFile.bytes($0.path, limit: ReleaseManifest.maximumSize + 1) }
            discardStaged()
            guard let bytes, let report else {
                feed(.fetchFailed(reason: "cannot read back the manifest downloaded from \(url)"))
                return
            }
            validators.noteManifest(etag: report.etag, lastModified: report.lastModified)
            manifestArrived(bytes, signature: report.sidecar(".minisig"), from: url)
        default:
            let reason = report?.message.map { EscapedText.escape($0) } ?? "overseerd-fetch ended with \(result.exit)"
            noteManifestUnchanged()
            feed(.fetchFailed(reason: "manifest: \(reason)"))
        }
    }

    /// Checks, reads and decides on a manifest; the cycle is in `.fetching`.
    /// The checks of its bytes (parse, digest, signatures) run on a background job.
    private func manifestArrived(_ bytes: [UInt8], signature: String?, from location: String) {
        guard let current = manifestTracking.trust?.current else { return feed(.unchanged) }
        do {
            try inBackground({ ManifestCheck(bytes: bytes, signature: signature, current: current) }) { [unowned self] check in
                manifestChecked(check, from: location)
            }
        } catch {
            feed(.fetchFailed(reason: "cannot start checking the manifest from \(EscapedText.escape(location)): \(error)"))
        }
    }

    private func manifestChecked(_ check: ManifestCheck, from location: String) {
        let manifest: ReleaseManifest
        let candidate: ManifestTrust.Candidate
        switch check.outcome {
        case let .refused(why, event):
            refuseManifest(why, from: location, event: event)
            return
        case let .checked(checked, checkedCandidate):
            (manifest, candidate) = (checked, checkedCandidate)
        }
        // Judged against the trust as it is now: keys forgotten meanwhile count no signature made under them.
        guard var trust = manifestTracking.trust else { return feed(.unchanged) }
        let verdict = trust.judge(candidate, releaseName: releaseName, now: Posix.wallClockSeconds)
        manifestTracking.trust = trust
        switch verdict {
        case let .refused(refusal):
            if case let .expired(at) = refusal {
                validators.keepManifest()
                manifestExpired(at, from: location)
                feed(.unchanged)
                return
            }
            // A refusal can quote the manifest's name: escaped and bounded like anything from the network.
            refuseManifest(EscapedText.escape(refusal.description), from: location, event: refusal.event)
            return
        case let .accepted(rotated):
            manifestTracking.expires = manifest.expires
            manifestTracking.expired = false
            if let rotated {
                logger.log(.notice, .manifestKeysChanged, "manifest from \(EscapedText.escape(location)) rotated the keys: from now on manifests must be signed by \(rotated) it names, in place of the command line's (overseerd forget-keys goes back to them)")
                host.upgradeStatusChanged()
            }
            guard let trust = manifestTracking.trust, let store = manifestTracking.trustStore else { break }
            // The raised sequence (and a rotation's keys) is on disk before anything follows from the
            // manifest: overseerd killed meanwhile, or one whose write failed and that restarts later,
            // has installed nothing a replay could undo. A failed write follows nothing; the next poll
            // takes the same manifest again (its validators are not kept) and writes it again.
            store.save(trust.record)
            store.whenWritten { [unowned self] failure in
                guard let failure else { return decide(manifest, from: location) }
                refuseManifest("its sequence cannot be kept in the state directory (\(EscapedText.escape(failure, limit: 256))): nothing from it is followed until it can be, or a replay after a restart could undo it",
                               from: location, event: .manifestRefused)
            }
            return
        }
        decide(manifest, from: location)
    }

    /// What this host does with an accepted manifest (`RolloutDecision`).
    private func decide(_ manifest: ReleaseManifest, from location: String) {
        let bucket = RolloutBucket.bucket(hostID: plan.hostID ?? "", version: manifest.version)
        let facts = RolloutDecision.Facts(manifestVersion: manifest.version, stagingPercent: manifest.stagingPercent,
                                          yanked: manifest.yanked, installedVersion: host.binaryLife.installed?.version,
                                          previousVersion: host.binaryLife.previousVersion, bucket: bucket)
        let version = EscapedText.escape(manifest.version, limit: 128)
        switch RolloutDecision.decide(facts) {
        case .upToDate:
            seen(manifest, bucket, "up to date")
            validators.keepManifest()
            feed(.unchanged)
        case let .waitForStage(bucket, percent):
            seen(manifest, bucket, "waiting for its stage")
            validators.keepManifest()
            manifestNote(.info, .rolloutDecision, "release \(version) waits for its stage: this host's bucket \(bucket) is not below \(percent) %")
            feed(.unchanged)
        case let .reject(why):
            seen(manifest, bucket, "refused")
            validators.keepManifest()
            refuseManifest(EscapedText.escape(why), from: location)
        case let .rollBackToPrevious(why):
            seen(manifest, bucket, "yanked, rolled back")
            validators.keepManifest()
            manifestNote(.notice, .rolloutDecision, "release \(EscapedText.escape(why))")
            host.binaryLifeEvent(.yanked(reason: "\(version) yanked"))
            feed(.unchanged)
        case let .take(why):
            seen(manifest, bucket, "taken")
            if manifest.sha256 == host.binaryLife.installed?.sha256 {
                // Installed already (by hand, or the state was lost): only the version was unknown.
                host.binaryLifeEvent(.versionLearned(.init(sha256: manifest.sha256, version: manifest.version)))
                validators.keepManifest()
                feed(.unchanged)
                return
            }
            let url: String
            do { url = try manifest.binaryURL(manifestURL: location, os: "linux", arch: plan.architecture) } catch {
                refuseManifest("\(error)", from: location)
                return
            }
            manifestNote(.notice, .rolloutDecision, "taking release \(version) (\(EscapedText.escape(why))) from \(EscapedText.escape(url))")
            fetchRelease(version: manifest.version, sha256: manifest.sha256, size: manifest.size, from: url)
        }
    }

    private func seen(_ manifest: ReleaseManifest, _ bucket: Int, _ decision: String) {
        manifestTracking.seen = (EscapedText.escape(manifest.version, limit: 128), bucket, manifest.stagingPercent, decision)
    }

    private func refuseManifest(_ why: String, from location: String, event: DaemonEvent = .upgradePollFailed) {
        manifestNote(.error, event, "manifest from \(EscapedText.escape(location)) refused: \(why); the installed binary stays")
        feed(.unchanged)
    }

    /// A decision about the manifest is said once, not at every poll.
    private func manifestNote(_ level: Supervision.LogLevel, _ event: DaemonEvent, _ text: String) {
        guard text != manifestTracking.lastNote else { return }
        manifestTracking.lastNote = text
        logger.log(Logger.level(level), event, text)
        host.upgradeStatusChanged()
    }

    /// Fetches the manifest's binary (a path or a URL) and checks it against the manifest's sha256.
    private func fetchRelease(version: String, sha256: String, size: Int64?, from url: String) {
        manifestTracking.pendingRelease = (version, sha256)
        manifestTracking.pendingSize = size
        if url.hasPrefix("/") {
            startCopy(from: url, identity: nil)
            return
        }
        guard let staging = newStagingFile() else { return }
        self.staging = staging
        // The manifest's size caps the download: overseerd-fetch stops one byte past it.
        startNetworkFetch(url, conditional: false, maxSize: min(size ?? settings.maxBinarySize, settings.maxBinarySize), sidecars: [], into: staging) { [unowned self] result in
            fetchFinished(result, keepsValidators: false)
        }
    }
}

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
    }

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
            fetchRelease(version: manifest.version, sha256: manifest.sha256, from: url)
        }
    }

    private func seen(_ manifest: ReleaseManifest, _ bucket: Int, _ decision: String) {
        manifestTracking.seen = (EscapedText.escape(manifest.version, limit: 128), bucket, manifest.stagingPercent, decision)
    }

    private func refuseManifest(_ why: String, from location: String) {
        manifestNote(.error, .upgradePollFailed, "manifest from \(EscapedText.escape(location)) refused: \(why); the installed binary stays")
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
    private func fetchRelease(version: String, sha256: String, from url: String) {
        manifestTracking.pendingRelease = (version, sha256)
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
}

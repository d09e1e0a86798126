import OverseerCore
import OverseerSystem

/// Installing a verified binary, the end of its restart and probation, and
/// the three ways back: a failed restart, a failed probation, a yanked release.
extension UpgradeDriver {
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

    func install(_ sha256: String) {
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
                if let release = manifestTracking.pendingRelease, release.sha256 == sha256 {
                    previousVersion = installedVersion
                    installedVersion = release.version
                    manifestTracking.pendingRelease = nil
                    validators.adoptManifest()
                }
                host.remember(binaryID: sha256, of: target)
                feed(.installed)
            })
        } catch {
            feed(.installFailed(reason: "cannot start installing: \(error)"))
        }
    }

    /// The installed release was yanked: the previous binary goes back and the yanked one is rejected.
    func rollBackYanked(reason: String) {
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

    func rollback() {
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

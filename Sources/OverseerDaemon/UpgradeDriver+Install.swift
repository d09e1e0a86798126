import OverseerCore
import OverseerSystem

/// Installing a verified binary: its trial is recorded (and on disk) before
/// the file moves; then the restart onto it. What follows (probation, a
/// rollback) is `BinaryLife`'s, carried out by the Supervisor.
extension UpgradeDriver {
    /// The generation started for an upgrade became ready, or did not.
    /// Returns true when it was this upgrade's restart and it succeeded.
    @discardableResult
    func restartFinished(binary: String, succeeded: Bool, reason: String?) -> Bool {
        guard case let .restarting(sha256) = cycle.state, binary == sha256 else { return false }
        expectedBinary = nil
        feed(.restartFinished(succeeded: succeeded, reason: reason))
        return succeeded
    }

    func install(_ sha256: String) {
        guard let staging else {
            feed(.abandoned(reason: "the verified file is no longer staged"))
            return
        }
        if host.binaryLife.isOnTrial || host.binaryLife.rollback != nil {
            feed(.installHeld)
            return
        }
        var release = BinaryLife.Release(sha256: sha256)
        if let pending = manifestTracking.pendingRelease, pending.sha256 == sha256 { release.version = pending.version }
        host.binaryLifeEvent(.installing(release))
        guard host.binaryLife.installed == release, host.binaryLife.isOnTrial else {
            feed(.installFailed(reason: "a trial or a rollback is under way"))
            return
        }
        let target = target
        let modificationTime = signatureTimestamp
        // The trial is on disk before the file moves: overseerd killed at any instant after this finds it.
        // Without that record nothing moves (a full or read-only state directory): the staged file waits.
        host.whenStateWritten { [unowned self] failure in
            if let failure {
                host.binaryLifeEvent(.installFailed(sha256: sha256))
                feed(.installFailed(reason: "its trial cannot be recorded in the state directory (\(failure)), and without that record overseerd killed during the trial would not roll it back"))
                return
            }
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
                        host.binaryLifeEvent(.installFailed(sha256: sha256))
                        feed(.installFailed(reason: failure))
                        return
                    }
                    self.staging = nil
                    signatureTimestamp = nil
                    if manifestTracking.pendingRelease?.sha256 == sha256 {
                        manifestTracking.pendingRelease = nil
                        validators.adoptManifest()
                    }
                    host.remember(binaryID: sha256, of: target)
                    feed(.installed)
                })
            } catch {
                host.binaryLifeEvent(.installFailed(sha256: sha256))
                feed(.installFailed(reason: "cannot start installing: \(error)"))
            }
        }
    }
}

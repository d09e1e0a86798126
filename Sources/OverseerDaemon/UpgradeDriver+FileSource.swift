import OverseerCore
import OverseerSystem

/// A file source: the inotify watch on its path, and copying it into a staging file.
extension UpgradeDriver {
    func startWatching(_ path: String) {
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

    /// Copies the file at `path` into a new staging file on a thread of its own.
    /// `identity`, for the watched file, is remembered once it is taken.
    func startCopy(from path: String, identity: [Int]?) {
        guard let staging = newStagingFile() else { return }
        self.staging = staging
        let expectedSize = manifestTracking.pendingSize
        let limit = min(expectedSize ?? settings.maxBinarySize, settings.maxBinarySize)
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
                case let .success((size, sha256)):
                    if let rejection = UpgradeVerification.sizeMismatch(size, expected: expectedSize) {
                        feed(.fetchFailed(reason: rejection.description))
                        return
                    }
                    if let identity { lastTakenIdentity = identity }
                    sidecars = intake.sidecars
                    fetched(sha256)
                case let .failure(error) where error.isStillWritten:
                    logger.log(.info, .upgradeUnchanged, "\(error)")
                    discardStaged()
                    feed(.unchanged)
                case let .failure(error):
                    // Not taken again until it changes: a FIFO or an oversized file would fail the same way each poll.
                    if let identity { lastTakenIdentity = identity }
                    if let expectedSize, expectedSize < settings.maxBinarySize, error.isOverLimit {
                        feed(.fetchFailed(reason: "the binary is longer than the manifest's \"size\" \(expectedSize): refused without reading it whole"))
                        return
                    }
                    feed(.fetchFailed(reason: "\(error)"))
                }
            })
        } catch {
            feed(.fetchFailed(reason: "cannot start copying \(path): \(error)"))
        }
    }
}

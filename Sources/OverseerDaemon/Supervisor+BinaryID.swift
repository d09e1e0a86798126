import OverseerCore
import OverseerSystem

extension Supervisor {
    // MARK: - The program's SHA-256 (OVERSEER_BINARY_ID)

    /// The program's SHA-256: from the cache while the file's stamp is the
    /// one it was hashed with (read once from the cache file, at the first
    /// start of that program), else hashed now. See `BinaryHashCache`.
    func identify(_ path: String) -> String {
        if let stamp = BinaryIdentity.stamp(ofFileAt: path) {
            if let id = binaryHashes.sha256(for: stamp) { return id }
            if let id = cachedBinaryHash(of: path, stamp: stamp) { return id }
        }
        do {
            let hashed = try BinaryIdentity.stampedSHA256(ofFileAt: path)
            _ = keep(hashed, of: path)
            logger.log(.debug, .binaryHashed, "hashed \(path) for OVERSEER_BINARY_ID")
            return hashed.sha256
        } catch {
            logger.log(.warning, .binaryHashFailed, "cannot hash \(path) for OVERSEER_BINARY_ID: \(error)")
            return ""
        }
    }

    /// Runs `work` (a restart's request) once the program's SHA-256 is known:
    /// at once while the file is unchanged since it was hashed, else after
    /// hashing it on a thread of its own, so that the spawn which follows finds
    /// it and the loop never reads a large program (a file replaced by hand, then
    /// SIGUSR2). The hash is kept for that spawn even when the file is too young
    /// for the cache file (`vouch`).
    func whenProgramHashed(_ work: @escaping () -> Void) {
        if programHashWaiters != nil {
            programHashWaiters?.append(work)
            return
        }
        guard let path = try? resolvedProgram(), let stamp = BinaryIdentity.stamp(ofFileAt: path),
              binaryHashes.sha256(for: stamp) == nil else { return work() }
        programHashWaiters = [work]
        do {
            try reactor.inBackground({ () -> Result<BinaryIdentity.Stamped, SystemError> in
                Result { () throws(SystemError) in try BinaryIdentity.stampedSHA256(ofFileAt: path) }
            }, then: { [unowned self] result in
                if case let .success(hashed) = result {
                    if !keep(hashed, of: path), hashed.stampBefore == hashed.stampAfter {
                        binaryHashes.vouch(path: path, sha256: hashed.sha256, stamp: hashed.stampAfter)
                    }
                    logger.log(.debug, .binaryHashed, "hashed \(path) for OVERSEER_BINARY_ID, off the loop")
                }
                runProgramHashWaiters()
            })
        } catch {
            runProgramHashWaiters()
        }
    }

    private func runProgramHashWaiters() {
        let waiting = programHashWaiters ?? []
        programHashWaiters = nil
        for work in waiting { work() }
    }

    /// Keeps a fresh hash in the cache (to be written to its file) when `BinaryHashCache` may trust it.
    private func keep(_ hashed: BinaryIdentity.Stamped, of path: String) -> Bool {
        guard binaryHashes.record(path: path, sha256: hashed.sha256, stampBefore: hashed.stampBefore,
                                  stampAfter: hashed.stampAfter, hashingBegan: hashed.began) else { return false }
        binaryHashUnsaved = true
        return true
    }

    /// The hash in the cache file, read the first time `path` is started.
    private func cachedBinaryHash(of path: String, stamp: BinaryHashCache.FileStamp) -> String? {
        guard let file = binaryHashFile(for: path), binaryHashFilesRead.insert(path).inserted else { return nil }
        switch file.load() {
        case .missing:
            return nil
        case let .ignored(reason):
            warnAboutBinaryHashFile("not using the kept hash: \(reason); the program is hashed instead")
            return nil
        case let .loaded(cache):
            guard let id = cache.sha256(for: stamp) else { return nil }
            binaryHashes = cache
            logger.log(.debug, .binaryHashReused, "OVERSEER_BINARY_ID of \(path) taken from \(file.path): the file is unchanged since it was hashed")
            return id
        }
    }

    /// Writes a new settled hash to the cache file (after the spawn: the child does not wait for it).
    func saveBinaryHash() {
        guard binaryHashUnsaved, let path = binaryHashes.entry?.path, let file = binaryHashFile(for: path) else { return }
        binaryHashUnsaved = false
        do {
            try file.save(binaryHashes)
        } catch {
            let advice = BinaryHashCache.unsavedAdvice(stateDirectory: configuration.stateDirectory)
            warnAboutBinaryHashFile("cannot keep the program's hash in \(file.path): \(error); it is hashed again at the next start (\(advice))")
        }
    }

    /// The upgrade hashed what it installed: the next spawn need not (in memory only: see `BinaryHashCache.vouch`).
    func remember(binaryID: String, of path: String) {
        guard let stamp = BinaryIdentity.stamp(ofFileAt: path) else { return }
        binaryHashes.vouch(path: path, sha256: binaryID, stamp: stamp)
    }

    private func binaryHashFile(for program: String) -> BinaryHashCacheFile? {
        configuration.binaryHashCacheDirectory.map { BinaryHashCacheFile(directory: $0, program: program) }
    }

    /// One warning per overseerd process about the cache file: it only saves time.
    private func warnAboutBinaryHashFile(_ message: String) {
        guard !binaryHashWarned else { return }
        binaryHashWarned = true
        logger.log(.warning, .stateWarning, message)
    }
}

import OverseerCore
import OverseerSystem

/// The upgrade state kept across restarts in the state directory: rejected
/// binaries, probation, the previous binary and the release versions.
extension UpgradeDriver {
    private var statePath: String? { settings.stateDirectory.map { $0 + "/" + UpgradeState.fileName } }

    func loadState() {
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
    func saveState() {
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
}

import Logging
import OverseerCore
import OverseerProtocol
import OverseerSystem

/// Keeps `ManifestTrust.Record` in the state directory (`manifest-trust-…`,
/// one per program, beside `upgrades-…`): read at start with
/// `PrivateStateFile`'s checks (owner, mode, type, size; a file others could
/// have written is not trusted), written off the loop (atomic rename, fsync),
/// one write at a time, the newest record winning. Its writes count as the
/// driver's background jobs, so a re-exec waits for them and the next image
/// reads the record from disk.
final class ManifestTrustStore {
    private let writer: StateFileWriter
    private let logger: Logger
    private var failureLogged = false

    var path: String { writer.file.path }

    init(directory: String, program: String, logger: Logger, background: @escaping StateFileWriter.Background) {
        writer = StateFileWriter(file: PrivateStateFile(directory: directory, name: ManifestTrust.Record.fileName(for: program),
                                                        limit: ManifestTrust.Record.maximumFileSize),
                                 background: background)
        self.logger = logger
        writer.ended = { [unowned self] _, failure in
            if let failure {
                if !failureLogged {
                    logger.log(.warning, .stateWarning, "cannot write \(path): \(failure); the highest manifest sequence is kept in memory only")
                }
                failureLogged = true
            } else {
                failureLogged = false
            }
        }
    }

    /// The record kept for this program; a problem is one warning and an empty
    /// record (replay protection then starts again from the next manifest).
    func load() -> ManifestTrust.Record {
        switch writer.file.read() {
        case .missing:
            return .init()
        case let .ignored(why):
            logger.log(.warning, .stateWarning, "manifest trust state not used: \(why); the highest sequence is learnt again from the next manifest")
            return .init()
        case let .text(text):
            do {
                let record = try ManifestTrust.Record(parsing: text)
                writer.holds(record.encoded)
                return record
            } catch {
                logger.log(.warning, .stateWarning, "\(path) ignored: \(error)")
                return .init()
            }
        }
    }

    /// Writes `record` soon, off the loop; a failure is said once and the record stays in memory.
    func save(_ record: ManifestTrust.Record) { writer.save(record.encoded) }

    /// Runs `work` once what was saved so far is on disk, with nil, or with why it could not be written.
    func whenWritten(_ work: @escaping (String?) -> Void) { writer.whenWritten(work) }

    /// At exit: what is still queued is written now.
    func flush() { writer.flush() }
}

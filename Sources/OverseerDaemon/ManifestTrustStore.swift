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
    typealias Background = (@escaping @Sendable () -> String?, @escaping (String?) -> Void) throws(SystemError) -> Void

    private let file: PrivateStateFile
    private let logger: Logger
    private let background: Background
    private var written: String?
    private var writing = false
    private var next: String?
    private var failureLogged = false

    var path: String { file.path }

    init(directory: String, program: String, logger: Logger, background: @escaping Background) {
        file = PrivateStateFile(directory: directory, name: ManifestTrust.Record.fileName(for: program),
                                limit: ManifestTrust.Record.maximumFileSize)
        self.logger = logger
        self.background = background
    }

    /// The record kept for this program; a problem is one warning and an empty
    /// record (replay protection then starts again from the next manifest).
    func load() -> ManifestTrust.Record {
        switch file.read() {
        case .missing:
            return .init()
        case let .ignored(why):
            logger.log(.warning, .stateWarning, "manifest trust state not used: \(why); the highest sequence is learnt again from the next manifest")
            return .init()
        case let .text(text):
            do {
                let record = try ManifestTrust.Record(parsing: text)
                written = record.encoded
                return record
            } catch {
                logger.log(.warning, .stateWarning, "\(file.path) ignored: \(error)")
                return .init()
            }
        }
    }

    /// Writes `record` soon, off the loop; a failure is said once and the record stays in memory.
    func save(_ record: ManifestTrust.Record) {
        let text = record.encoded
        guard text != (next ?? (writing ? nil : written)) else { return }
        next = text
        writeNext()
    }

    /// At exit: what is still queued is written on the loop's thread (a few hundred bytes).
    func flush() {
        guard let text = next else { return }
        next = nil
        try? file.write(text)
    }

    private func writeNext() {
        guard !writing, let text = next else { return }
        next = nil
        writing = true
        let file = file
        do {
            try background({ () -> String? in
                do {
                    try file.write(text)
                    return nil
                } catch {
                    return "\(error)"
                }
            }, { [unowned self] failure in finished(text, failure: failure) })
        } catch {
            finished(text, failure: "cannot start writing it: \(error)")
        }
    }

    private func finished(_ text: String, failure: String?) {
        writing = false
        if let failure {
            if !failureLogged {
                logger.log(.warning, .stateWarning, "cannot write \(file.path): \(failure); the highest manifest sequence is kept in memory only")
            }
            failureLogged = true
        } else {
            written = text
            failureLogged = false
        }
        writeNext()
    }
}

import Logging
import OverseerCore
import OverseerProtocol
import OverseerSystem
import SystemPackage

/// Keeps `BinaryLife.Record` in the state directory: one file per program
/// (`upgrades-XXXXXXXXXXXXXXXX`, so that two instances given one directory
/// never see each other's state), read at start with `PrivateStateFile`'s
/// checks (owner, mode, file type, size), and written on a thread of its own,
/// one write at a time, the newest record winning, so a full or slow disk never
/// holds up the loop. `whenWritten` runs its work once what was asked for so far
/// is on disk: the install waits for its trial record that way.
final class BinaryLifeStore {
    /// The file's name before version 2: read once (to carry a trial or
    /// rejections over), then renamed so that no second instance reads it.
    static let legacyName = "upgrades"

    private let file: PrivateStateFile
    private let program: String
    private let logger: Logger
    private let writer: StateFileWriter
    private var failureLogged = false

    var path: String { file.path }
    /// Held while this overseerd keeps the program's state (`takeLock`).
    private var lock: FileDescriptor?

    /// Takes the state file's lock: two overseerd for one program and one state
    /// directory would undo each other's installs and rollbacks. The reason when another holds it.
    func takeLock() -> String? {
        do {
            lock = try file.lock()
            return nil
        } catch {
            return error.description
        }
    }

    /// Why the directory cannot hold the state (not private: others can write it, it is not owned by
    /// this user or root, it is not a directory), nil when it can.
    var directoryProblem: String? { file.directoryProblem() }
    /// A write is under way or queued.
    var isBusy: Bool { writer.isBusy }

    init(directory: String, program: String, loop: EventScheduling, logger: Logger) {
        file = PrivateStateFile(directory: directory, name: BinaryLife.Record.fileName(for: program),
                                limit: BinaryLife.Record.maximumFileSize)
        self.program = program
        self.logger = logger
        writer = StateFileWriter(file: file) { work, then throws(SystemError) in try loop.inBackground(work, then: then) }
        writer.ended = { [unowned self] _, failure in finished(failure: failure) }
    }

    /// The record kept for this program; any problem is one warning and an empty record.
    func load() -> BinaryLife.Record {
        do {
            try Posix.makeDirectory(file.directory, mode: 0o700)
        } catch {
            logger.log(.warning, .stateWarning, "cannot create the state directory: \(error); upgrade state is kept in memory only")
            return .init(program: program)
        }
        var source = file
        var loaded = file.read()
        if loaded == .missing {
            source = PrivateStateFile(directory: file.directory, name: Self.legacyName, limit: BinaryLife.Record.maximumFileSize)
            loaded = source.read()
        }
        switch loaded {
        case .missing:
            return .init(program: program)
        case let .ignored(why):
            logger.log(.warning, .stateWarning, "upgrade state not used: \(why); starting without it")
            return .init(program: program)
        case let .text(text):
            var record: BinaryLife.Record
            do {
                record = try BinaryLife.Record(parsing: text)
            } catch {
                logger.log(.warning, .stateWarning, "\(source.path) ignored: \(error)")
                return .init(program: program)
            }
            if let other = record.program, other != program {
                logger.log(.warning, .stateWarning, "\(source.path) is about \(EscapedText.escape(other)), not \(program); ignored")
                return .init(program: program)
            }
            record.program = program
            if source.path != file.path {
                // Version 1 had one file for any program: the first instance to start takes it.
                try? Posix.rename(source.path, to: source.path + ".migrated")
                logger.log(.notice, .stateLoaded, "\(source.path) carried over into \(file.path)")
            }
            if !record.rejected.isEmpty {
                logger.log(.info, .stateLoaded, "\(record.rejected.count) rejected binary(ies) remembered from \(file.path) (overseerd forget SHA256 to clear one)")
            }
            writer.holds(source.path == file.path ? record.encoded : nil)
            return record
        }
    }

    /// Writes `record` soon, off the loop; a failure is said once and the record stays in memory.
    func save(_ record: BinaryLife.Record) {
        writer.save(record.encoded)
    }

    /// Runs `work` once everything saved so far is on disk, with nil, or with
    /// why it could not be written.
    func whenWritten(_ work: @escaping (String?) -> Void) {
        writer.whenWritten(work)
    }

    /// At exit: what is still queued is written on the loop's thread (a few hundred bytes).
    func flush() {
        writer.flush()
    }

    /// A write ended (or never started): said once if it failed.
    private func finished(failure: String?) {
        if let failure {
            if !failureLogged { logger.log(.warning, .stateWarning, "cannot write \(file.path): \(failure); upgrade state is kept in memory only") }
            failureLogged = true
        } else {
            failureLogged = false
        }
    }
}

import OverseerCore

/// Where a program's `BinaryHashCache` entry is kept across overseerd's own
/// restarts: `DIRECTORY/binary-id-XXXXXXXXXXXXXXXX` (one file per program
/// path), a `PrivateStateFile`. What is read is never trusted beyond the
/// entry's key check.
public struct BinaryHashCacheFile: Sendable {
    /// What `load` found.
    public enum Loaded: Sendable {
        /// No file: nothing to say.
        case missing
        /// A file not used, and why (one line, for one warning).
        case ignored(String)
        case loaded(BinaryHashCache)
    }

    public typealias Failure = PrivateStateFile.Failure

    let file: PrivateStateFile
    public var directory: String { file.directory }
    public var path: String { file.path }

    /// The cache file for `program` (its absolute path) in `directory`.
    public init(directory: String, program: String) {
        file = PrivateStateFile(directory: directory, name: BinaryHashCache.fileName(for: program),
                                limit: BinaryHashCache.maximumFileSize)
    }

    /// Reads the file; never blocks and never throws.
    public func load() -> Loaded {
        switch file.read() {
        case .missing: return .missing
        case let .ignored(why): return .ignored(why)
        case let .text(text):
            do {
                return .loaded(try BinaryHashCache(parsing: text))
            } catch {
                return .ignored("\(path): \(error)")
            }
        }
    }

    /// Replaces the file with the cache's entry (atomically, mode 0600); does
    /// nothing for a cache without an entry that may be written. Throws a
    /// one-line reason when the directory is not private or the write failed.
    public func save(_ cache: BinaryHashCache) throws(Failure) {
        guard let text = cache.encoded else { return }
        try file.write(text)
    }

    /// Why the directory is not a private place, nil when it is.
    func directoryProblem() -> String? { file.directoryProblem() }
}

import OverseerProtocol

/// When overseerd may reuse a program's SHA-256 (OVERSEER_BINARY_ID) instead
/// of reading the whole file again, and the one-entry file that keeps it
/// across overseerd's own restarts. Pure: stamps and clocks in, decisions out;
/// the stat, the hash and the file are the syscall layer's.
///
/// An entry is the program's path, its `FileStamp` when it was hashed, and
/// the hash. It answers only for a file whose stamp is the same in every
/// field (device and inode included): a file replaced (new inode), truncated or grown (size), or written
/// in place (ctime, which no one can set back, even when mtime is) is hashed
/// again.
///
/// Racy timestamps (as git's index has them): a file written within the same
/// clock tick as the stat that made an entry would keep the entry's stamp
/// with new contents. So an entry is only made for a file whose mtime and
/// ctime are both older than the moment hashing began by more than
/// `racyWindow`; a younger file is hashed on every start until it has aged.
///
/// One exception, kept in memory only (`vouch`): the binary an upgrade has
/// just installed. Its bytes were hashed as they were staged, and the stamp
/// is taken right after the rename that put them in place, so its ctime is
/// as young as can be; the restart that follows uses it instead of reading
/// the file again. A write in place by the file's owner within the same
/// clock tick as that rename would go unseen until the next restart of
/// overseerd, which hashes the file again.
///
/// The file, one line after the header, fields separated by one space:
/// ```
/// overseerd-binary-id 1
/// DEVICE INODE SIZE MTIME-NS CTIME-NS SHA256 PATH
/// ```
public struct BinaryHashCache: Equatable, Sendable {
    /// What `stat` says of a file, as far as its contents can have changed.
    public struct FileStamp: Equatable, Hashable, Sendable {
        public var device: UInt64
        public var inode: UInt64
        public var size: Int64
        /// st_mtim and st_ctim, in nanoseconds since the epoch.
        public var modified: Int64
        public var changed: Int64

        public init(device: UInt64, inode: UInt64, size: Int64, modified: Int64, changed: Int64) {
            self.device = device
            self.inode = inode
            self.size = size
            self.modified = modified
            self.changed = changed
        }
    }

    /// A program's hash and the stamp its file had.
    public struct Entry: Equatable, Sendable {
        public var path: String
        public var stamp: FileStamp
        public var sha256: String

        public init(path: String, stamp: FileStamp, sha256: String) {
            self.path = path
            self.stamp = stamp
            self.sha256 = sha256
        }
    }

    /// How much older than the start of hashing a file's mtime and ctime must
    /// be for its hash to be kept: more than a kernel clock tick (1–10 ms,
    /// coarse clocks), FAT's 2 s mtime resolution, and small clock skew
    /// between a network filesystem's server and this host.
    public static let racyWindow: Int64 = 2_000_000_000

    /// The largest cache file read: one entry with the longest path (PATH_MAX).
    public static let maximumFileSize = 8192

    static let header = "overseerd-binary-id 1"

    /// The entry in use, if any.
    public private(set) var entry: Entry?
    /// The entry came from `vouch`: it is not written to the file.
    public private(set) var isVouched = false

    public init(entry: Entry? = nil) { self.entry = entry }

    /// The hash of a file that has `stamp` now, when every field of the
    /// entry's stamp is the same; nil when the file must be hashed. The path
    /// is not compared: device and inode name the file (a program started
    /// through a symbolic link is the file an upgrade installed).
    public func sha256(for stamp: FileStamp) -> String? {
        guard let entry, entry.stamp == stamp else { return nil }
        return entry.sha256
    }

    /// Whether a hash of a file with `stamp`, read from a moment no earlier
    /// than `hashingBegan` (wall clock, ns), may be kept: its mtime and its
    /// ctime are both older than `hashingBegan` by more than `racyWindow`.
    public static func isSettled(_ stamp: FileStamp, hashingBegan: Int64) -> Bool {
        let limit = hashingBegan - racyWindow
        return stamp.modified < limit && stamp.changed < limit
    }

    /// Takes a fresh hash: it replaces the entry when the file was settled
    /// (`isSettled`), the stamp did not change while it was read
    /// (`stampAfter`), the hash is 64 hex digits and the path can be written
    /// on one line. Returns whether it did, i.e. whether the file is to be
    /// written; otherwise the entry is dropped if it was for this path.
    public mutating func record(path: String, sha256: String, stampBefore: FileStamp, stampAfter: FileStamp,
                                hashingBegan: Int64) -> Bool {
        guard stampBefore == stampAfter, Self.isSettled(stampBefore, hashingBegan: hashingBegan),
              SHA256Hex.isValid(sha256), Self.isWritable(path) else {
            if entry?.path == path { entry = nil }
            return false
        }
        let new = Entry(path: path, stamp: stampBefore, sha256: sha256)
        guard new != entry || isVouched else { return false }
        entry = new
        isVouched = false
        return true
    }

    /// Takes the hash of a binary an upgrade has just installed at `path`
    /// (hashed as it was staged; `stamp` taken after the rename), for use in
    /// memory only: see the type's note.
    public mutating func vouch(path: String, sha256: String, stamp: FileStamp) {
        guard SHA256Hex.isValid(sha256) else { return }
        entry = Entry(path: path, stamp: stamp, sha256: sha256)
        isVouched = true
    }

    static func isWritable(_ path: String) -> Bool {
        path.hasPrefix("/") && !path.utf8.contains(where: { $0 == 10 || $0 == 0 })
            && path.utf8.count + 200 < maximumFileSize
    }

    /// The file's text for the entry; nil without one, or for a vouched one.
    public var encoded: String? {
        guard let entry, !isVouched else { return nil }
        let s = entry.stamp
        return "\(Self.header)\n\(s.device) \(s.inode) \(s.size) \(s.modified) \(s.changed) \(entry.sha256) \(entry.path)\n"
    }

    /// Parses a cache file; throws with one line saying what is wrong (the
    /// caller warns once and hashes the program).
    public init(parsing text: String) throws(ConfigurationError) {
        func bad(_ why: String) -> ConfigurationError { ConfigurationError("not an overseerd binary-id cache: \(why)") }
        guard text.utf8.count <= Self.maximumFileSize else { throw bad("over \(Self.maximumFileSize) bytes") }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first == Substring(Self.header) else { throw bad("it does not start with \"\(Self.header)\"") }
        guard lines.count == 3, lines[2].isEmpty, text.hasSuffix("\n") else {
            throw bad("it does not hold exactly one entry line")
        }
        let fields = lines[1].split(separator: " ", maxSplits: 6, omittingEmptySubsequences: false)
        guard fields.count == 7,
              let device = UInt64(fields[0]), let inode = UInt64(fields[1]), let size = Int64(fields[2]),
              let modified = Int64(fields[3]), let changed = Int64(fields[4]), size >= 0,
              SHA256Hex.isValid(String(fields[5])), Self.isWritable(String(fields[6])) else {
            throw bad("bad entry \"\(EscapedText.escape(String(lines[1].prefix(80))))\"")
        }
        self.init(entry: Entry(path: String(fields[6]),
                               stamp: FileStamp(device: device, inode: inode, size: size, modified: modified, changed: changed),
                               sha256: String(fields[5])))
    }

    /// The cache file's name for a program path, in the cache's directory:
    /// one file per program, so that several instances sharing a directory do
    /// not overwrite each other's entry (the path inside is checked as well).
    public static func fileName(for path: String) -> String {
        // FNV-1a 64: stable across runs, unlike Swift's seeded Hasher.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in path.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "binary-id-" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

import OverseerProtocol

/// Whether a release manifest may be followed, and what trust follows from it:
/// TUF's rules for one signed file, in small. Pure: the caller verifies the
/// signatures (it hands in which trusted keys made a valid one), hashes the
/// bytes and reads the clock; this decides.
///
/// Checked in this order, the first failure refusing the manifest and changing
/// nothing:
/// 1. signatures: valid ones by `current.required` distinct keys of `current`
///    (the command line's keys, or those a rotation installed); with a
///    rotation, also by the new set's own threshold of its own keys;
/// 2. a signed manifest carries `name`, `sequence` and `size`;
/// 3. `name` equals the release name (`--release-name`);
/// 4. `sequence` is not below the highest accepted (`replayed`), and equal
///    only with the same bytes (`conflict`);
/// 5. `expires` is not past.
///
/// What is accepted raises the highest sequence, remembers the bytes' digest
/// and expiry, and installs a rotation's keys in place of the command line's
/// (only the first time: the same manifest again rotates nothing).
public struct ManifestTrust: Equatable, Sendable {
    /// A set of minisign public keys (their base64 lines) and how many of them must sign.
    public struct KeySet: Equatable, Sendable, CustomStringConvertible {
        /// Sorted, without repeats.
        public let keys: [String]
        public let required: Int

        public init(keys: [String], required: Int) {
            self.keys = Array(Set(keys)).sorted()
            self.required = required
        }

        /// No keys: manifests are taken unsigned (`--allow-unsigned-manifest`, or a local manifest without a key).
        public var isUnsigned: Bool { keys.isEmpty }

        /// Why this set cannot be a rotation's, nil when it can.
        var problem: String? {
            if keys.isEmpty { return "it names no keys" }
            if keys.count > ManifestTrust.maximumKeys { return "it names \(keys.count) keys, over \(ManifestTrust.maximumKeys)" }
            if !(1 ... keys.count).contains(required) {
                return "\"signatures_required\" \(required) is not between 1 and its \(keys.count) key(s)"
            }
            return nil
        }

        public var description: String {
            keys.isEmpty ? "no keys (unsigned)" : "\(required) of \(keys.count) key(s)"
        }
    }

    /// What the caller found in one manifest.
    public struct Candidate: Equatable, Sendable {
        public var name: String?
        public var sequence: UInt64?
        public var size: Int64?
        /// Seconds since the epoch (UTC).
        public var expires: Int64?
        /// A rotation: the keys and threshold the manifest asks to trust from now on.
        public var rotation: KeySet?
        /// SHA-256 of the manifest's bytes, as signed.
        public var digest: String
        /// The trusted keys (of `current` and of `rotation`) that made a valid signature of the bytes.
        public var signers: Set<String>

        public init(name: String? = nil, sequence: UInt64? = nil, size: Int64? = nil, expires: Int64? = nil,
                    rotation: KeySet? = nil, digest: String, signers: Set<String> = []) {
            self.name = name
            self.sequence = sequence
            self.size = size
            self.expires = expires
            self.rotation = rotation
            self.digest = digest
            self.signers = signers
        }
    }

    /// Why a manifest was refused; its `event` is the stable name it is logged under.
    public enum Refusal: Equatable, Sendable, CustomStringConvertible {
        case notEnoughSignatures(valid: Int, required: Int, keys: Int)
        case rotationNotSigned(valid: Int, required: Int, keys: Int)
        case badRotation(String)
        case missing(field: String)
        case wrongName(String, expected: String)
        case replayed(sequence: UInt64, highest: UInt64)
        case conflict(sequence: UInt64)
        case expired(at: Int64)

        public var event: DaemonEvent {
            switch self {
            case .replayed: .manifestReplayed
            case .conflict: .manifestConflict
            case .expired: .manifestExpired
            default: .manifestRefused
            }
        }

        public var description: String {
            switch self {
            case let .notEnoughSignatures(valid, required, keys):
                "it carries valid signatures by \(valid) of the \(keys) trusted key(s), \(required) required"
            case let .rotationNotSigned(valid, required, keys):
                "it rotates the keys but is signed by \(valid) of its \(keys) new key(s), \(required) required"
            case let .badRotation(why):
                "its key rotation is malformed: \(why)"
            case let .missing(field):
                "a signed manifest must carry \"\(field)\", and this one has none"
            case let .wrongName(name, expected):
                "it is for \"\(name)\", not \"\(expected)\" (--release-name)"
            case let .replayed(sequence, highest):
                "its sequence \(sequence) is below \(highest), the highest taken: an old manifest replayed"
            case let .conflict(sequence):
                "its sequence \(sequence) was taken before with other contents: the publisher must raise the sequence on every change"
            case let .expired(at):
                "it expired at \(RFC3339.format(at)): the publisher must sign a fresh one (with a new sequence)"
            }
        }
    }

    /// What `judge` decided.
    public enum Verdict: Equatable, Sendable {
        /// Follow the manifest; `rotated` is the key set it installed, if it changed the keys.
        case accepted(rotated: KeySet?)
        case refused(Refusal)
    }

    /// The most keys one set may hold.
    public static let maximumKeys = 16

    /// The command line's keys and threshold (`--minisign-key`, `--signatures-required`).
    public let commandLine: KeySet
    /// The keys a rotation installed, in place of the command line's; nil: the command line's count.
    public private(set) var rotated: KeySet?
    /// The highest sequence accepted, and the SHA-256 of that manifest's bytes.
    public private(set) var highest: (sequence: UInt64, digest: String)?
    /// When the manifest last accepted expires (seconds since the epoch), if it says.
    public private(set) var expires: Int64?

    public init(commandLine: KeySet, record: Record = .init()) {
        self.commandLine = commandLine
        self.highest = record.highest
        self.expires = record.expires
        // Keys rotated from another command line's are not this one's: the operator changed the keys by hand since.
        self.rotated = record.rotatedFrom == commandLine.keys ? record.rotated : nil
    }

    /// The keys manifests must be signed with now.
    public var current: KeySet { rotated ?? commandLine }

    /// Whether the manifest last accepted has expired at `now`.
    public func hasExpired(now: Int64) -> Bool { expires.map { $0 <= now } ?? false }

    /// Judges `candidate` for the program released as `releaseName`, at `now`
    /// (seconds since the epoch); an accepted one updates the trust.
    public mutating func judge(_ candidate: Candidate, releaseName: String, now: Int64) -> Verdict {
        let current = self.current
        if !current.isUnsigned {
            let valid = candidate.signers.intersection(current.keys).count
            guard valid >= current.required else {
                return .refused(.notEnoughSignatures(valid: valid, required: current.required, keys: current.keys.count))
            }
        }
        var rotation: KeySet?
        // The manifest taken last, polled again, rotates nothing: a rotation happens once, when
        // its manifest is new (else a replay of it would undo `forget-keys`).
        let takenAlready = candidate.sequence != nil && highest?.sequence == candidate.sequence && highest?.digest == candidate.digest
        if let proposed = candidate.rotation, proposed != current, !takenAlready {
            if let problem = proposed.problem { return .refused(.badRotation(problem)) }
            guard !current.isUnsigned else {
                return .refused(.badRotation("an unsigned manifest cannot install keys: start overseerd with --minisign-key"))
            }
            let valid = candidate.signers.intersection(proposed.keys).count
            guard valid >= proposed.required else {
                return .refused(.rotationNotSigned(valid: valid, required: proposed.required, keys: proposed.keys.count))
            }
            rotation = proposed
        }
        if !current.isUnsigned {
            if candidate.name == nil { return .refused(.missing(field: "name")) }
            if candidate.sequence == nil { return .refused(.missing(field: "sequence")) }
            if candidate.size == nil { return .refused(.missing(field: "size")) }
        }
        if let name = candidate.name, name != releaseName {
            return .refused(.wrongName(name, expected: releaseName))
        }
        if let sequence = candidate.sequence, let highest {
            if sequence < highest.sequence { return .refused(.replayed(sequence: sequence, highest: highest.sequence)) }
            if sequence == highest.sequence, candidate.digest != highest.digest { return .refused(.conflict(sequence: sequence)) }
        }
        if let at = candidate.expires, at <= now { return .refused(.expired(at: at)) }
        if let sequence = candidate.sequence { highest = (sequence, candidate.digest) }
        expires = candidate.expires
        if let rotation { rotated = rotation }
        return .accepted(rotated: rotation)
    }

    /// Back to the command line's keys (`overseerd forget-keys`); whether a rotation was dropped.
    public mutating func forgetKeys() -> Bool {
        defer { rotated = nil }
        return rotated != nil
    }

    /// What is kept across overseerd's restarts.
    public var record: Record {
        Record(highest: highest, expires: expires, rotated: rotated, rotatedFrom: rotated == nil ? nil : commandLine.keys)
    }

    public static func == (a: ManifestTrust, b: ManifestTrust) -> Bool {
        a.commandLine == b.commandLine && a.record == b.record
    }
}

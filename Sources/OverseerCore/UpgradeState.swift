import OverseerProtocol

/// What overseerd keeps about upgrades across its own restarts, in
/// `--state-directory`: the binaries rejected, the one on probation and since
/// when, the one before it. Pure: text in, text out; the file is written
/// atomically by the syscall layer.
///
/// One record a line, fields separated by a space:
/// ```
/// overseerd-state 1
/// rejected HEX
/// probation HEX UNIX-SECONDS
/// previous HEX
/// version TEXT
/// previous-version TEXT
/// ```
public struct UpgradeState: Equatable, Sendable {
    public static let fileName = "upgrades"
    static let header = "overseerd-state 1"

    /// A binary on probation: its hash, and when (wall clock, seconds) its generation started serving.
    public struct Probation: Equatable, Sendable {
        public var sha256: String
        public var since: Int64
        public init(sha256: String, since: Int64) {
            self.sha256 = sha256
            self.since = since
        }
    }

    public var rejected: Set<String> = []
    public var probation: Probation?
    /// The binary installed before the one in place (what a rollback puts back).
    public var previous: String?
    /// The release versions (from a manifest) of the binary in place and of the previous one.
    public var version: String?
    public var previousVersion: String?

    public init(rejected: Set<String> = [], probation: Probation? = nil, previous: String? = nil,
                version: String? = nil, previousVersion: String? = nil) {
        self.rejected = rejected
        self.probation = probation
        self.previous = previous
        self.version = version
        self.previousVersion = previousVersion
    }

    public var encoded: String {
        var lines = [Self.header]
        lines += rejected.sorted().map { "rejected \($0)" }
        if let probation { lines.append("probation \(probation.sha256) \(probation.since)") }
        if let previous { lines.append("previous \(previous)") }
        if let version { lines.append("version \(version)") }
        if let previousVersion { lines.append("previous-version \(previousVersion)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Parses a state file; throws with one line saying what is wrong (the
    /// caller warns and goes on without it).
    public init(parsing text: String) throws(ConfigurationError) {
        func bad(_ why: String) -> ConfigurationError { ConfigurationError("not an overseerd state file: \(why)") }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first == Substring(Self.header) else { throw bad("it does not start with \"\(Self.header)\"") }
        self.init()
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            switch (fields.first, fields.count) {
            case ("rejected", 2) where SHA256Hex.isValid(fields[1]):
                rejected.insert(fields[1])
            case ("probation", 3) where SHA256Hex.isValid(fields[1]):
                guard let since = Int64(fields[2]) else { throw bad("bad time in \"\(line.prefix(80))\"") }
                probation = Probation(sha256: fields[1], since: since)
            case ("previous", 2) where SHA256Hex.isValid(fields[1]):
                previous = fields[1]
            case ("version", 2...):
                version = fields.dropFirst().joined(separator: " ")
            case ("previous-version", 2...):
                previousVersion = fields.dropFirst().joined(separator: " ")
            default:
                throw bad("unknown record \"\(line.prefix(80))\"")
            }
        }
    }
}

import OverseerProtocol

extension ManifestTrust {
    /// What `--state-directory` keeps of the trust in one program's manifests
    /// (`manifest-trust-XXXXXXXXXXXXXXXX`, beside `upgrades-…`), and its one
    /// codec. Pure: text in, text out.
    /// ```
    /// overseerd-manifest-trust 1
    /// sequence 42 <sha256 of that manifest's bytes>
    /// expires 1767225600
    /// keys 2 <base64 key> <base64 key> <base64 key>
    /// from <base64 key> ...
    /// ```
    /// `keys` is a rotation's set and threshold; `from` the command line's keys
    /// it replaced (a different command line drops the rotation).
    public struct Record: Equatable, Sendable {
        public static let maximumFileSize = 64 << 10
        static let header = "overseerd-manifest-trust 1"

        public var highest: (sequence: UInt64, digest: String)?
        public var expires: Int64?
        public var rotated: KeySet?
        public var rotatedFrom: [String]?

        public init(highest: (sequence: UInt64, digest: String)? = nil, expires: Int64? = nil, rotated: KeySet? = nil,
                    rotatedFrom: [String]? = nil) {
            self.highest = highest
            self.expires = expires
            self.rotated = rotated
            self.rotatedFrom = rotatedFrom
        }

        /// The file's name for `program` (its absolute path) in the state directory.
        public static func fileName(for program: String) -> String {
            "manifest-trust-" + BinaryHashCache.fileName(for: program).dropFirst("binary-id-".count)
        }

        public var encoded: String {
            var lines = [Self.header]
            if let highest { lines.append("sequence \(highest.sequence) \(highest.digest)") }
            if let expires { lines.append("expires \(expires)") }
            if let rotated { lines.append((["keys", String(rotated.required)] + rotated.keys).joined(separator: " ")) }
            if let rotatedFrom { lines.append((["from"] + rotatedFrom).joined(separator: " ")) }
            return lines.joined(separator: "\n") + "\n"
        }

        /// Parses the file; throws one line saying what is wrong. Never traps, whatever the bytes.
        public init(parsing text: String) throws(ConfigurationError) {
            func bad(_ why: String) -> ConfigurationError { ConfigurationError("not an overseerd manifest trust file: \(why)") }
            guard text.utf8.count <= Self.maximumFileSize else { throw bad("over \(Self.maximumFileSize) bytes") }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
            guard lines.first == Substring(Self.header) else { throw bad("it does not start with \"\(Self.header)\"") }
            self.init()
            for line in lines.dropFirst() {
                let words = line.split(separator: " ").map(String.init)
                switch words.first {
                case "sequence":
                    guard words.count == 3, let sequence = UInt64(words[1]), SHA256Hex.isValid(words[2]) else {
                        throw bad("bad line \"\(EscapedText.escape(String(line), limit: 80))\"")
                    }
                    highest = (sequence, words[2])
                case "expires":
                    guard words.count == 2, let value = Int64(words[1]) else { throw bad("bad expires line") }
                    expires = value
                case "keys":
                    guard words.count >= 3, let required = Int(words[1]) else { throw bad("bad keys line") }
                    let set = KeySet(keys: Array(words.dropFirst(2)), required: required)
                    if let problem = set.problem { throw bad("its keys: \(problem)") }
                    rotated = set
                case "from":
                    rotatedFrom = Array(words.dropFirst()).sorted()
                default:
                    throw bad("unknown line \"\(EscapedText.escape(String(line), limit: 80))\"")
                }
            }
            if rotated != nil, rotatedFrom == nil { throw bad("a keys line without a from line") }
        }

        public static func == (a: Record, b: Record) -> Bool {
            a.highest?.sequence == b.highest?.sequence && a.highest?.digest == b.highest?.digest && a.expires == b.expires
                && a.rotated == b.rotated && a.rotatedFrom == b.rotatedFrom
        }
    }
}

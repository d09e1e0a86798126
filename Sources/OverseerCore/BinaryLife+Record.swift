import OverseerProtocol

extension BinaryLife {
    /// What `--state-directory` keeps about one program's binaries, and its one
    /// codec. Pure: text in, text out; the file (one per program,
    /// `upgrades-XXXXXXXXXXXXXXXX`) is checked and written atomically by the
    /// syscall layer.
    ///
    /// One record a line, fields separated by a space; a version is the last
    /// field, percent-encoded (`%20` for a space):
    /// ```
    /// overseerd-state 2
    /// program /usr/local/bin/app
    /// installed HEX [VERSION]
    /// trial
    /// good HEX [VERSION]
    /// prior HEX [VERSION]
    /// rejected HEX
    /// ```
    /// `trial` says the installed binary is on trial; `good` is the last good
    /// binary (the only rollback target); `prior` the good one before it (where
    /// a yank of `good` goes back to). Version 1 files (`probation`, `previous`,
    /// `version`) are read and written back as version 2.
    public struct Record: Equatable, Sendable {
        public static let maximumFileSize = 1 << 20
        static let header = "overseerd-state 2"
        static let headerV1 = "overseerd-state 1"

        /// The program file this record is about (`Installer.target`).
        public var program: String?
        public var installed: Release?
        public var onTrial = false
        public var lastGood: Release?
        public var prior: Release?
        public var rejected: Set<String> = []

        public init(program: String? = nil, installed: Release? = nil, onTrial: Bool = false, lastGood: Release? = nil,
                    prior: Release? = nil, rejected: Set<String> = []) {
            self.program = program
            self.installed = installed
            self.onTrial = onTrial
            self.lastGood = lastGood
            self.prior = prior
            self.rejected = rejected
        }

        /// The state file's name for `program` (its absolute path) in the state directory.
        public static func fileName(for program: String) -> String {
            "upgrades-" + BinaryHashCache.fileName(for: program).dropFirst("binary-id-".count)
        }

        public var encoded: String {
            var lines = [Self.header]
            if let program { lines.append("program \(Self.encode(program))") }
            if let installed { lines.append(Self.line("installed", installed)) }
            if onTrial { lines.append("trial") }
            if let lastGood { lines.append(Self.line("good", lastGood)) }
            if let prior { lines.append(Self.line("prior", prior)) }
            lines += rejected.sorted().map { "rejected \($0)" }
            return lines.joined(separator: "\n") + "\n"
        }

        /// Parses a state file; throws one line saying what is wrong (the caller
        /// warns once and goes on without it). Never traps, whatever the bytes.
        public init(parsing text: String) throws(ConfigurationError) {
            func bad(_ why: String) -> ConfigurationError { ConfigurationError("not an overseerd state file: \(why)") }
            guard text.utf8.count <= Self.maximumFileSize else { throw bad("over \(Self.maximumFileSize) bytes") }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
            self.init()
            switch lines.first {
            case Substring(Self.header)?:
                for line in lines.dropFirst() { try parse(line, bad: bad) }
            case Substring(Self.headerV1)?:
                try parseV1(lines.dropFirst(), bad: bad)
            default:
                throw bad("it does not start with \"\(Self.header)\"")
            }
            if onTrial, installed == nil { throw bad("\"trial\" without an installed binary") }
        }

        private mutating func parse(_ line: Substring, bad: (String) -> ConfigurationError) throws(ConfigurationError) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            let shown = EscapedText.escape(String(line.prefix(80)))
            switch (fields.first, fields.count) {
            case ("program", 2):
                guard let path = Self.decode(fields[1]) else { throw bad("bad path in \"\(shown)\"") }
                program = path
            case ("installed", 2...3), ("good", 2...3), ("prior", 2...3):
                guard let release = Self.release(fields.dropFirst()) else { throw bad("bad release in \"\(shown)\"") }
                switch fields[0] {
                case "installed": installed = release
                case "good": lastGood = release
                default: prior = release
                }
            case ("trial", 1):
                onTrial = true
            case ("rejected", 2) where SHA256Hex.isValid(String(fields[1])):
                rejected.insert(String(fields[1]))
            default:
                throw bad("unknown record \"\(shown)\"")
            }
        }

        /// Version 1: `rejected HEX`, `probation HEX UNIX-SECONDS`, `previous HEX`, `version TEXT`, `previous-version TEXT`.
        private mutating func parseV1(_ lines: ArraySlice<Substring>, bad: (String) -> ConfigurationError) throws(ConfigurationError) {
            var probation: String?
            var previous: String?
            var version: String?
            var previousVersion: String?
            for line in lines {
                let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                let shown = EscapedText.escape(String(line.prefix(80)))
                switch (fields.first, fields.count) {
                case ("rejected", 2) where SHA256Hex.isValid(fields[1]):
                    rejected.insert(fields[1])
                case ("probation", 3) where SHA256Hex.isValid(fields[1]):
                    // The time is not used any more, but a file that cannot be read whole is not used at all.
                    guard let since = Int64(fields[2]), since >= 0 else { throw bad("bad time in \"\(shown)\"") }
                    _ = since
                    probation = fields[1]
                case ("previous", 2) where SHA256Hex.isValid(fields[1]):
                    previous = fields[1]
                case ("version", 2...):
                    version = fields.dropFirst().joined(separator: " ")
                case ("previous-version", 2...):
                    previousVersion = fields.dropFirst().joined(separator: " ")
                default:
                    throw bad("unknown record \"\(shown)\"")
                }
            }
            // Version 1 named the installed binary only while it was on probation.
            if let probation {
                installed = Release(sha256: probation, version: version)
                onTrial = true
                lastGood = previous.map { Release(sha256: $0, version: previousVersion) }
            } else {
                prior = previous.map { Release(sha256: $0, version: previousVersion) }
            }
        }

        private static func line(_ name: String, _ release: Release) -> String {
            "\(name) \(release.sha256)" + (release.version.map { " " + encode($0) } ?? "")
        }

        private static func release(_ fields: ArraySlice<Substring>) -> Release? {
            guard let hash = fields.first, SHA256Hex.isValid(String(hash)) else { return nil }
            var release = Release(sha256: String(hash))
            if fields.count == 2 {
                guard let version = decode(fields[fields.startIndex + 1]), !version.isEmpty else { return nil }
                release.version = version
            }
            return release
        }

        /// Percent-encodes every byte outside `!`…`~` and `%` itself.
        static func encode(_ text: String) -> String {
            var output = ""
            for byte in text.utf8 {
                if byte > 0x20, byte < 0x7f, byte != UInt8(ascii: "%") {
                    output.unicodeScalars.append(Unicode.Scalar(byte))
                } else {
                    let hex = String(byte, radix: 16, uppercase: true)
                    output += "%" + (hex.count == 1 ? "0" : "") + hex
                }
            }
            return output
        }

        static func decode(_ field: Substring) -> String? {
            var bytes: [UInt8] = []
            var iterator = field.utf8.makeIterator()
            while let byte = iterator.next() {
                guard byte == UInt8(ascii: "%") else {
                    bytes.append(byte)
                    continue
                }
                guard let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return nil }
                bytes.append(value)
            }
            return String(validating: bytes, as: UTF8.self)
        }
    }
}

import OverseerProtocol

/// Where new binaries come from and what they must pass before they replace the program.
public struct UpgradeSettings: Equatable, Sendable {
    /// What `--fetch` names.
    public enum Source: Equatable, Sendable, CustomStringConvertible {
        /// A file watched with inotify (`file:///path` or a plain path).
        case file(path: String)
        /// Fetched by overseerd-fetch: `http(s)://…`, `s3://bucket/key`, `github:owner/repo`.
        case network(url: String)

        public init(parsing text: String) throws(ConfigurationError) {
            if text.hasPrefix("file://") {
                let path = String(text.dropFirst(7))
                guard path.hasPrefix("/") else {
                    throw ConfigurationError("bad --fetch \"\(text)\": a file URL needs an absolute path, e.g. file:///srv/deploy/app")
                }
                self = .file(path: path)
            } else if text.hasPrefix("http://") || text.hasPrefix("https://") {
                guard text.split(separator: "/").count >= 2 else {
                    throw ConfigurationError("bad --fetch \"\(text)\": no host in the URL")
                }
                self = .network(url: text)
            } else if text.hasPrefix("s3://") {
                let rest = text.dropFirst(5)
                guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex, rest.index(after: slash) != rest.endIndex else {
                    throw ConfigurationError("bad --fetch \"\(text)\": write s3://BUCKET/KEY")
                }
                self = .network(url: text)
            } else if text.hasPrefix("github:") {
                let parts = text.dropFirst(7).split(separator: "/", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw ConfigurationError("bad --fetch \"\(text)\": write github:OWNER/REPO")
                }
                self = .network(url: text)
            } else if text.contains("://") {
                throw ConfigurationError("bad --fetch \"\(text)\": use file://, http://, https://, s3:// or github:")
            } else if text.isEmpty {
                throw ConfigurationError("bad --fetch \"\": give a path or URL")
            } else {
                self = .file(path: text)
            }
        }

        public var description: String {
            switch self {
            case let .file(path): "file://\(path)"
            case let .network(url): url
            }
        }

        /// How often to look when nothing tells us earlier: a watched file is seen
        /// at once through inotify and only checked slowly as a fallback.
        public var defaultInterval: Duration {
            switch self {
            case .file: .seconds(30)
            case .network: .seconds(300)
            }
        }
    }

    /// How a staged binary proves it can start (`--check`).
    public enum Check: Equatable, Sendable, CustomStringConvertible {
        /// Run with OVERSEER_CHECK_TOKEN set; it must print the token and exit 0.
        case token
        /// Run with these arguments; it must exit 0.
        case exec(arguments: [String])
        case none

        public init(parsing text: String) throws(ConfigurationError) {
            switch text {
            case "token": self = .token
            case "none": self = .none
            default:
                guard text.hasPrefix("exec:") else {
                    throw ConfigurationError("bad --check \"\(text)\": write token, none or exec:ARGS (e.g. exec:--version)")
                }
                self = .exec(arguments: text.dropFirst(5).split(separator: " ").map(String.init))
            }
        }

        public var description: String {
            switch self {
            case .token: "token"
            case .none: "none"
            case let .exec(arguments): "exec:" + arguments.joined(separator: " ")
            }
        }
    }

    public var source: Source
    /// Between polls; nil takes the source's default.
    public var interval: Duration?
    /// The exact SHA-256 the new binary must have (lower-case hex).
    public var sha256: String?
    /// Also fetch `URL.sha256` and require the binary to match it.
    public var sidecarChecksum = false
    /// The minisign public keys (`--minisign-key`, repeatable: a .pub file or its base64 line).
    public var minisignKeys: [String] = []
    /// The first of `minisignKeys`: a single key, as before thresholds.
    public var minisignKey: String? {
        get { minisignKeys.first }
        set { minisignKeys = newValue.map { [$0] } ?? [] }
    }
    /// How many distinct keys of `minisignKeys` must have signed (`--signatures-required`).
    public var signaturesRequired = 1
    /// A network manifest may come unsigned (`--allow-unsigned-manifest`).
    public var allowUnsignedManifest = false
    /// The product a manifest must name (`--release-name`); nil: the program's file name.
    public var releaseName: String?
    public var check: Check = .token
    public var checkTimeout: Duration = .seconds(5)
    /// A command run with the staged path as its argument; non-zero rejects.
    public var preUpgrade: String?
    /// Install without restarting.
    public var noRestart = false
    /// The largest binary taken.
    public var maxBinarySize: Int64 = 1 << 30
    /// The longest one network poll may take (overseerd-fetch's --max-time; it is killed a little after).
    public var fetchTimeout: Duration = .seconds(900)
    /// Run overseerd-fetch as this user.
    public var fetchUser: String?
    public var s3Endpoint: String?
    public var githubAPIURL: String?
    public var assetPattern: String?
    /// overseerd-fetch itself.
    public var fetchHelperPath: String?
    /// How long a generation on a newly installed binary must serve before the
    /// binary is trusted; an exit sooner rolls back. Zero turns it off.
    public var probation: Duration = .seconds(30)
    /// During probation, a child that sends WATCHDOG=1 and then stops for this
    /// long fails it (`--probation-watchdog`); nil: not watched.
    public var probationWatchdog: Duration?
    /// Where `BinaryLife.Record` is kept across overseerd's own restarts; nil: nowhere.
    public var stateDirectory: String?
    /// `source` is a release manifest (`--manifest`), not the binary itself.
    public var manifest = false
    /// This host's id for staged rollouts (`--host-id`); nil: /etc/machine-id.
    public var hostID: String?

    public init(source: Source) { self.source = source }

    public var effectiveInterval: Duration { interval ?? source.defaultInterval }

    public func validate() throws(ConfigurationError) {
        if let sha256 {
            guard SHA256Hex.isValid(sha256) else {
                throw ConfigurationError("bad --sha256 \"\(sha256)\": give the 64 lower-case hex digits of the binary's SHA-256")
            }
        }
        if sidecarChecksum, case .file = source {
            // The file fetcher reads PATH.sha256 beside the file: allowed.
        }
        if effectiveInterval < .milliseconds(100) {
            throw ConfigurationError("--fetch-interval \(effectiveInterval.shortDescription) is too short: give at least 100ms")
        }
        if fetchTimeout < .seconds(1) {
            throw ConfigurationError("--fetch-timeout \(fetchTimeout.shortDescription) is too short: give at least 1s")
        }
        if probation < .zero {
            throw ConfigurationError("--probation \(probation.shortDescription) is negative: give 0 to turn probation off, or a duration such as 30s")
        }
        if checkTimeout <= .zero {
            throw ConfigurationError("--check-timeout must be longer than 0")
        }
        if maxBinarySize <= 0 {
            throw ConfigurationError("--max-binary-size must be more than 0")
        }
        try validateTrust()
    }

    /// The rules of trusted rollouts (docs/SECURITY.md): a network manifest is
    /// signed unless said otherwise, and its replay protection survives restarts.
    private func validateTrust() throws(ConfigurationError) {
        if !minisignKeys.isEmpty, !(1 ... minisignKeys.count).contains(signaturesRequired) {
            throw ConfigurationError("--signatures-required \(signaturesRequired) is not between 1 and the \(minisignKeys.count) --minisign-key given")
        }
        if minisignKeys.isEmpty, signaturesRequired != 1 {
            throw ConfigurationError("--signatures-required needs --minisign-key: give the keys whose signatures count")
        }
        if minisignKeys.count > 16 {
            throw ConfigurationError("\(minisignKeys.count) --minisign-key given: at most 16")
        }
        guard manifest else {
            if allowUnsignedManifest { throw ConfigurationError("--allow-unsigned-manifest needs --manifest: it is about release manifests") }
            if releaseName != nil { throw ConfigurationError("--release-name needs --manifest: it is the name a manifest must carry") }
            return
        }
        if case .network = source, minisignKeys.isEmpty, !allowUnsignedManifest {
            throw ConfigurationError("--manifest \(source) needs --minisign-key: a manifest fetched over the network is signed, or anyone on the path picks what every host runs; give --allow-unsigned-manifest to take it on the transport's word")
        }
        if allowUnsignedManifest, !minisignKeys.isEmpty {
            throw ConfigurationError("--allow-unsigned-manifest and --minisign-key contradict each other: leave out one")
        }
        if stateDirectory == nil {
            throw ConfigurationError("--manifest needs --state-directory (or $STATE_DIRECTORY): the highest manifest sequence taken must survive restarts, or an old manifest replayed after one would be followed")
        }
        if let releaseName {
            guard !releaseName.isEmpty, releaseName.utf8.count <= 128,
                  !releaseName.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
                throw ConfigurationError("bad --release-name: give 1 to 128 printable characters, as the manifests' \"name\"")
            }
        }
    }
}

/// Sizes as people write them: `1G`, `500M`, `64K`, `1048576`.
public enum ByteSize {
    public static func parse(_ text: String) throws(ConfigurationError) -> Int64 {
        let units: [(String, Int64)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
                                        ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("B", 1)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            if let value = Int64(text.dropLast(suffix.count)), value > 0, value <= Int64.max / factor {
                return value * factor
            }
        }
        if let value = Int64(text), value > 0 { return value }
        throw ConfigurationError("bad size \"\(text)\": write e.g. 500M, 1G or a number of bytes")
    }
}

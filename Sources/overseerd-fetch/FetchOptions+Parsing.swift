/// The outcome of reading the command line.
enum CommandLineRequest: Equatable {
    case fetch(FetchOptions)
    case help
}

extension FetchOptions {
    /// Reads `overseerd-fetch [options] URL` (arguments without the program name).
    /// Options take `--name VALUE` or `--name=VALUE`; each single-valued option may be given once.
    static func parse(_ arguments: [String]) throws(FetchFailure) -> CommandLineRequest {
        var values: [(name: String, value: String)] = []
        var url: String?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--help" || argument == "-h" { return .help }
            if argument == "--" {
                guard index == arguments.count - 1, url == nil else { throw .usage("expected exactly one URL after --") }
                url = arguments[index]
                break
            }
            if argument.hasPrefix("--") {
                var name = String(argument.dropFirst(2)), value: String
                if let equals = name.firstIndex(of: "=") {
                    value = String(name[name.index(after: equals)...])
                    name = String(name[..<equals])
                } else {
                    guard index < arguments.count else { throw .usage("--\(name) needs a value") }
                    value = arguments[index]
                    index += 1
                }
                guard knownOptions.contains(name) else { throw .usage("unknown option --\(name)") }
                if name != "sidecar", values.contains(where: { $0.name == name }) {
                    throw .usage("--\(name) given twice")
                }
                guard !value.contains(where: { $0.isNewline || $0 == "\0" }) else {
                    throw .usage("--\(name) contains a line break")
                }
                values.append((name, value))
            } else if argument.hasPrefix("-") && argument != "-" {
                throw .usage("unknown option \(argument)")
            } else {
                guard url == nil else { throw .usage("more than one URL given (\(url!) and \(argument))") }
                url = argument
            }
        }
        guard let url else { throw .usage("no URL given") }
        guard let source = FetchSource(parsing: url) else {
            throw .usage("cannot fetch \"\(url)\": expected http://…, https://…, s3://BUCKET/KEY or github:OWNER/REPO")
        }
        var options = FetchOptions(source: source, sourceText: url)
        for (name, value) in values {
            try options.apply(name, value)
        }
        return .fetch(options)
    }

    private static let knownOptions: Set<String> = [
        "output-fd", "etag", "last-modified", "max-size", "connect-timeout", "low-speed-time",
        "max-time", "max-redirects", "sidecar", "s3-endpoint", "s3-region", "github-api-url", "asset-pattern",
    ]

    private mutating func apply(_ name: String, _ value: String) throws(FetchFailure) {
        switch name {
        case "output-fd": outputFD = Int32(try Self.integer(name, value, in: 0 ... Int64(Int32.max)))
        case "etag": etag = value
        case "last-modified": lastModified = value
        case "max-size": maxSize = try Self.integer(name, value, in: 1 ... Int64.max)
        case "connect-timeout": connectTimeoutMilliseconds = try Self.milliseconds(name, value)
        case "low-speed-time":
            // libcurl counts this one in whole seconds.
            lowSpeedTimeSeconds = (try Self.milliseconds(name, value) + 999) / 1000
        case "max-time": maxTimeMilliseconds = try Self.milliseconds(name, value)
        case "max-redirects": maxRedirects = Int(try Self.integer(name, value, in: 0 ... 1000))
        case "sidecar":
            guard !value.isEmpty, !value.contains(where: { $0 == "/" || $0 == "?" || $0 == "#" || $0 == " " }) else {
                throw .usage("--sidecar \"\(value)\" must be a file-name suffix such as .sha256")
            }
            if !sidecars.contains(value) { sidecars.append(value) }
        case "s3-endpoint": s3Endpoint = try Self.httpURL(name, value)
        case "s3-region":
            guard !value.isEmpty else { throw .usage("--s3-region is empty") }
            s3Region = value
        case "github-api-url": githubAPIURL = try Self.httpURL(name, value)
        case "asset-pattern":
            guard !value.isEmpty else { throw .usage("--asset-pattern is empty") }
            assetPattern = value
        default:
            throw .usage("unknown option --\(name)")
        }
    }

    private static func httpURL(_ name: String, _ value: String) throws(FetchFailure) -> String {
        guard case .http = FetchSource(parsing: value) else {
            throw .usage("--\(name) \"\(value)\" must be an http:// or https:// URL")
        }
        return value
    }

    private static func integer(_ name: String, _ value: String, in range: ClosedRange<Int64>) throws(FetchFailure) -> Int64 {
        guard let number = Int64(value), range.contains(number) else {
            throw .usage("--\(name) \"\(value)\" must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// Seconds, whole or with a fraction (`0.5`), as milliseconds; at least 1 ms.
    private static func milliseconds(_ name: String, _ value: String) throws(FetchFailure) -> Int {
        guard let seconds = Double(value), seconds.isFinite, seconds > 0, seconds <= 31_536_000 else {
            throw .usage("--\(name) \"\(value)\" must be a number of seconds greater than 0")
        }
        return max(1, Int((seconds * 1000).rounded(.up)))
    }
}

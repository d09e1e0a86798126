/// Turns OVERSEERD_* environment variables into command-line options, so a
/// unit file can set any flag. A flag given on the command line wins over its variable.
public enum EnvironmentOptions {
    /// How an option takes its value.
    public enum Kind: Sendable {
        /// `--flag` with no value: the variable is `1`/`true`/`yes` or `0`/`false`/`no`.
        case flag
        /// `--option VALUE`.
        case single
        /// `--option VALUE` repeated: the variable holds values separated by whitespace.
        case repeated
    }

    /// The variable for `--ready-timeout` is `OVERSEERD_READY_TIMEOUT`.
    public static func variableName(for option: String) -> String {
        "OVERSEERD_" + option.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// `arguments` with options from `environment` put in front, for each
    /// option in `options` that the command line (before `--`) does not give,
    /// under its long name or one of its `aliases` (`["listen": "-l"]`).
    public static func apply(
        to arguments: [String],
        environment: [String: String],
        options: [(name: String, kind: Kind)],
        aliases: [String: String] = [:]
    ) throws(ConfigurationError) -> [String] {
        let separator = arguments.firstIndex(of: "--") ?? arguments.endIndex
        let given = arguments[..<separator]
        var prefix: [String] = []
        for (name, kind) in options {
            let variable = variableName(for: name)
            guard let value = environment[variable] else { continue }
            let flag = "--" + name
            let spellings = [flag] + (aliases[name].map { [$0] } ?? [])
            if given.contains(where: { word in spellings.contains { word == $0 || word.hasPrefix($0 + "=") } }) { continue }
            switch kind {
            case .flag:
                switch value.lowercased() {
                case "1", "true", "yes", "on": prefix.append(flag)
                case "0", "false", "no", "off", "": break
                default: throw ConfigurationError("bad \(variable)=\(value): write 1 or 0")
                }
            case .single:
                prefix.append(flag + "=" + value)
            case .repeated:
                for part in value.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }) {
                    prefix.append(flag + "=" + part)
                }
            }
        }
        return prefix + arguments
    }
}

extension EnvironmentOptions {
    /// An `OVERSEERD_*` variable that sets nothing, and the one it most likely meant.
    public struct UnknownVariable: Equatable, Sendable {
        public let name: String
        /// A known variable at most two edits away (a letter missing, extra,
        /// changed, or two swapped), the closest first; nil when none is that close.
        public let suggestion: String?

        public init(name: String, suggestion: String?) {
            self.name = name
            self.suggestion = suggestion
        }
    }

    /// The `OVERSEERD_*` variables of `environment` that set none of `options`
    /// and are not among `others` (variables read otherwise, such as
    /// `OVERSEERD_STATE_FD`), sorted by name: they are ignored, which a person
    /// should be told once at start (systemd warns of an unknown setting the same way).
    public static func unknownVariables(
        in environment: [String: String],
        options: [(name: String, kind: Kind)],
        others: Set<String> = []
    ) -> [UnknownVariable] {
        let known = options.map { variableName(for: $0.name) } + others.sorted()
        return environment.keys.filter { $0.hasPrefix("OVERSEERD_") && !known.contains($0) }.sorted().map { name in
            let ranked = known.map { (candidate: $0, distance: editDistance(name, $0, atMost: 2)) }
                .filter { $0.distance <= 2 }
                .min { $0.distance < $1.distance }
            return UnknownVariable(name: name, suggestion: ranked?.candidate)
        }
    }

    /// Optimal-string-alignment distance (insertions, deletions, substitutions and
    /// adjacent swaps) between `a` and `b`; any value above `atMost` is returned as `atMost + 1`.
    static func editDistance(_ a: String, _ b: String, atMost limit: Int) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        if abs(a.count - b.count) > limit { return limit + 1 }
        if a.isEmpty || b.isEmpty { return min(max(a.count, b.count), limit + 1) }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0 ... b.count)
        for i in 1 ... a.count {
            var current = [Int](repeating: 0, count: b.count + 1)
            current[0] = i
            for j in 1 ... b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], previous2[j - 2] + 1)
                }
            }
            previous2 = previous
            previous = current
        }
        return min(previous[b.count], limit + 1)
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

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

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

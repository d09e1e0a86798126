import OverseerCore
import OverseerProtocol

/// The input as words separated by NUL bytes.
private func words(_ bytes: UnsafeRawBufferPointer) -> [String] {
    bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
}

/// A few of overseerd's own options, one of each kind, with an alias.
private let options: [(name: String, kind: EnvironmentOptions.Kind)] = [
    ("listen", .repeated), ("ready", .single), ("ready-timeout", .single), ("no-restart", .flag), ("fetch", .single),
]
private let aliases = ["listen": "-l"]

/// Arguments, the OVERSEERD_* environment, LISTEN_* and socket names. The words
/// alternate: a selector word chooses how the following words are read.
func fuzzEnvironment(_ bytes: UnsafeRawBufferPointer) {
    guard let selector = bytes.first else { return }
    let all = words(UnsafeRawBufferPointer(rebasing: bytes.dropFirst()))
    switch selector % 3 {
    case 0:
        // Words up to an empty word are arguments; after it, KEY=VALUE variables.
        let split = all.firstIndex(of: "") ?? all.endIndex
        let arguments = Array(all[..<split])
        var environment: [String: String] = [:]
        for word in all[split...].dropFirst() {
            let parts = word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0])
            // Short keys name the options' variables, so that they are hit often.
            let name = key.count == 1 ? EnvironmentOptions.variableName(for: options[Int(key.utf8.first!) % options.count].name) : key
            environment[name] = parts.count > 1 ? String(parts[1]) : ""
        }
        if let result = try? EnvironmentOptions.apply(to: arguments, environment: environment, options: options, aliases: aliases) {
            require(result.count >= arguments.count && Array(result.suffix(arguments.count)) == arguments,
                    "apply \(arguments) \(environment) -> \(result): the command line is not kept at the end")
            for word in result.dropLast(arguments.count) {
                // By bytes: `=` and a combining mark after it make one Character.
                require(options.contains { word == "--" + $0.name || word.utf8.starts(with: ("--" + $0.name + "=").utf8) },
                        "apply \(arguments) \(environment) -> \(result): \(word.debugDescription) is no option")
            }
        }
        let split2 = CommandSplit.split(arguments, optionsTakingValue: ["--listen", "-l", "--ready", "--fetch"])
        require(split2.options + split2.command == arguments || split2.options + ["--"] + split2.command == arguments,
                "split \(arguments) -> \(split2)")
    case 1:
        // LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, each only when its word is there.
        var environment: [String: String] = [:]
        for (name, value) in zip([EnvironmentName.listenFDs, EnvironmentName.listenPID, EnvironmentName.listenFDNames], all) {
            environment[name] = value
        }
        guard let fds = try? ListenFDs.parse(environment: environment, ownPID: 4242) else { return }
        require(fds.count <= 65_536 && fds.fds.count == fds.count, "ListenFDs \(environment) -> \(fds.count) fds")
        var written = Dictionary(uniqueKeysWithValues: fds.environmentEntries.map { ($0.name, $0.value) })
        written[EnvironmentName.listenPID] = "4242"
        let again = try? ListenFDs.parse(environment: written, ownPID: 4242)
        require(again == fds, "ListenFDs \(environment) -> \(written) -> \(String(describing: again))")
    default:
        for word in all {
            if let name = try? SocketName(word) {
                require(name.rawValue == word && !word.isEmpty && word.utf8.count <= 255
                        && word.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ":") },
                        "SocketName accepted \(word.debugDescription)")
            }
        }
    }
}

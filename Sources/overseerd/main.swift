import Glibc
import ArgumentParser
import Logging
import OverseerCore
import OverseerDaemon
import OverseerProtocol
import OverseerSystem

let environment = ProcessEnvironment.current().dictionary
var commandLine = Array(CommandLine.arguments.dropFirst())
// The control commands are short-lived clients: signals keep their usual effect
// (Ctrl-C ends them), so they run before the daemon's signal set-up.
if let first = commandLine.first, ["status", "health", "metrics", "restart", "reexec", "forget", "forget-keys"].contains(first) {
    ControlClient.run(commandLine, environment: environment)
}

// Before anything else the daemon does, and before any thread exists: every
// signal is taken through the signalfd, never by a handler.
SignalSource.blockAllSignals()
// `overseerd --check-configuration ARGS…`: only parse and validate ARGS (and
// the OVERSEERD_* variables), say so and exit 0. A running overseerd asks its
// new image this before it re-executes into it with the same command line.
let checkOnly = commandLine.first == HandoverState.checkConfigurationFlag
if checkOnly { commandLine.removeFirst() }
do {
    let (given, program) = CommandSplit.split(commandLine, optionsTakingValue: OverseerdCommand.optionsTakingValue)
    let options = try EnvironmentOptions.apply(
        to: given, environment: environment,
        options: OverseerdCommand.environmentOptions, aliases: OverseerdCommand.shortOptions)
    let command = try OverseerdCommand.parse(OverseerdCommand.joiningValues(options))
    let configuration = try command.makeConfiguration(command: program, environment: environment)
    let logLevel = try command.makeLogLevel()
    let logFormat = try command.logFormat.map { text throws(ConfigurationError) in try LogFormat(parsing: text) }
    if checkOnly {
        print(HandoverState.checkConfigurationAnswer(version: OverseerdCommand.version))
        exit(0)
    }
    let logger = Daemon.makeLogger(level: logLevel, format: logFormat, environment: environment)
    // Once per start, as systemd does for an unknown setting; a re-executed image
    // (OVERSEERD_STATE_FD set) has the same environment and says nothing again.
    if environment[HandoverState.environmentVariable] == nil {
        let unknown = EnvironmentOptions.unknownVariables(
            in: environment, options: OverseerdCommand.environmentOptions, others: [HandoverState.environmentVariable])
        if !unknown.isEmpty {
            for variable in unknown {
                let name = EscapedText.escape(variable.name, limit: 128)
                let hint = variable.suggestion.map { "did you mean \($0)?" } ?? "no option is set by it (see overseerd --help)"
                logger.log(.warning, .configurationWarning, "unknown variable \(name) ignored: \(hint)")
            }
        }
    }
    Daemon.run(configuration, logger: logger, logFormat: logFormat)
} catch let error as ConfigurationError {
    // The values quoted in a message come from the command line or OVERSEERD_*:
    // a newline or an escape sequence in one must not cut or forge the line.
    Daemon.fail("\(EscapedText.escape(error.description, limit: 2048)) — see overseerd --help", code: OverseerExitCode.usage)
} catch {
    let code = OverseerdCommand.exitCode(for: error)
    if code == .success {
        // --help and --version.
        print(OverseerdCommand.fullMessage(for: error))
        exit(0)
    }
    let message = OverseerdCommand.message(for: error)
    let firstLine = message.split(separator: "\n").first.map(String.init) ?? message
    let escaped = EscapedText.escape(firstLine.prefix(1).lowercased() + firstLine.dropFirst(), limit: 2048)
    Daemon.fail("\(escaped) — see overseerd --help", code: OverseerExitCode.usage)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ArgumentParser
import OverseerCore
import OverseerDaemon
import OverseerSystem

let environment = ProcessEnvironment.current().dictionary
var commandLine = Array(CommandLine.arguments.dropFirst())
// The control commands are short-lived clients: signals keep their usual effect
// (Ctrl-C ends them), so they run before the daemon's signal set-up.
if let first = commandLine.first, ["status", "restart", "reexec"].contains(first) {
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
    let command = try OverseerdCommand.parse(options)
    let configuration = try command.makeConfiguration(command: program, environment: environment)
    let logLevel = try command.makeLogLevel()
    if checkOnly {
        print("overseerd \(OverseerdCommand.version): the command line is valid")
        exit(0)
    }
    Daemon.run(configuration, logLevel: logLevel)
} catch let error as ConfigurationError {
    Daemon.fail("\(error) — see overseerd --help", code: OverseerExitCode.usage)
} catch {
    let code = OverseerdCommand.exitCode(for: error)
    if code == .success {
        // --help and --version.
        print(OverseerdCommand.fullMessage(for: error))
        exit(0)
    }
    let message = OverseerdCommand.message(for: error)
    let firstLine = message.split(separator: "\n").first.map(String.init) ?? message
    Daemon.fail("\(firstLine.prefix(1).lowercased() + firstLine.dropFirst()) — see overseerd --help", code: OverseerExitCode.usage)
}

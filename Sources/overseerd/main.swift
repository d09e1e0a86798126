#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ArgumentParser
import OverseerCore
import OverseerDaemon
import OverseerSystem

// Before anything else, and before any thread exists: every signal is taken
// through the signalfd, never by a handler.
SignalSource.blockAllSignals()

let environment = ProcessEnvironment.current().dictionary
let commandLine = Array(CommandLine.arguments.dropFirst())
if let first = commandLine.first, ["status", "restart", "reexec"].contains(first) {
    ControlClient.run(commandLine, environment: environment)
}
do {
    let (given, program) = CommandSplit.split(commandLine, optionsTakingValue: OverseerdCommand.optionsTakingValue)
    let options = try EnvironmentOptions.apply(
        to: given, environment: environment,
        options: OverseerdCommand.environmentOptions, aliases: OverseerdCommand.shortOptions)
    let command = try OverseerdCommand.parse(options)
    let configuration = try command.makeConfiguration(command: program, environment: environment)
    Daemon.run(configuration, logLevel: try command.makeLogLevel())
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

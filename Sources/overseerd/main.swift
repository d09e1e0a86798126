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
do {
    let arguments = try EnvironmentOptions.apply(
        to: Array(CommandLine.arguments.dropFirst()), environment: environment,
        options: OverseerdCommand.environmentOptions)
    let (options, program) = CommandSplit.split(arguments, optionsTakingValue: OverseerdCommand.optionsTakingValue)
    let command = try OverseerdCommand.parse(options)
    let configuration = try command.makeConfiguration(command: program)
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

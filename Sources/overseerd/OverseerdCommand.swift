import ArgumentParser
import Logging
import OverseerCore

/// The command line. Values are kept as written and turned into a
/// `Configuration` afterwards, so every mistake gets overseerd's own one-line message.
struct OverseerdCommand: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "overseerd",
        abstract: "Run a program behind sockets that survive its restarts and upgrades.",
        discussion: """
            overseerd binds the listeners, then starts PROGRAM with them as fds 3, 4, ... and the \
            systemd socket-activation variables (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID = the \
            child's own pid), plus OVERSEER_GENERATION, OVERSEER_BINARY_PATH, OVERSEER_BINARY_ID \
            and a NOTIFY_SOCKET of its own. Signals are passed on to the child; overseerd exits \
            the way the child did. The restart signal (USR2) starts a new child on the same \
            sockets and stops the old one once the new one is ready.

            Every option can also be set as OVERSEERD_<OPTION> (e.g. OVERSEERD_STOP_TIMEOUT=10s; \
            repeated --listen values separated by spaces). Durations are written 500ms, 10s, 5m.

            Exit codes: the child's own, or 64 usage error, 69 first child never ready, \
            71 system call failed at start, 126 program not executable, 127 program not found.
            """,
        version: version)

    @Option(name: [.short, .customLong("listen")],
            help: ArgumentHelp("A socket to own and pass on: [NAME=]HOST:PORT, [IPV6]:PORT, :PORT, udp:HOST:PORT or unix:/path. Repeatable; fds follow this order. Unnamed ones are named \"unknown\".",
                               valueName: "[name=]address"))
    var listen: [String] = []

    @Option(help: ArgumentHelp("listen(2) backlog of stream listeners.", valueName: "n"))
    var backlog: Int32 = 4096

    @Option(name: .customLong("unix-mode"), help: ArgumentHelp("Permissions of unix socket files, in octal (e.g. 660).", valueName: "mode"))
    var unixMode: String?

    @Option(name: .customLong("ready"), help: ArgumentHelp("When a new child counts as ready: notify (it sends READY=1) or delay:DURATION (it stayed up that long).", valueName: "mode"))
    var ready: String = ReadinessMode.default.description

    @Option(name: .customLong("ready-timeout"), help: ArgumentHelp("A new child not ready by then has failed.", valueName: "duration"))
    var readyTimeout: String = "60s"

    @Option(name: .customLong("restart-signal"), help: ArgumentHelp("The signal that starts a graceful restart.", valueName: "signal"))
    var restartSignal: String = "USR2"

    @Option(name: .customLong("stop-signal"), help: ArgumentHelp("The signal that asks an old child to stop.", valueName: "signal"))
    var stopSignal: String = "TERM"

    @Option(name: .customLong("stop-timeout"), help: ArgumentHelp("How long a stopping child has before SIGKILL.", valueName: "duration"))
    var stopTimeout: String = "30s"

    @Option(name: .customLong("parent-death-signal"), help: ArgumentHelp("The signal a child gets if overseerd dies, or none.", valueName: "signal"))
    var parentDeathSignal: String = "TERM"

    @Option(name: .customLong("log-level"), help: ArgumentHelp("debug, info, notice, warning or error.", valueName: "level"))
    var logLevel: String = "info"

    /// The program and its arguments: not parsed here (see `CommandSplit`), declared for --help.
    @Argument(help: ArgumentHelp("The program to run and its arguments, after --.", valueName: "program"))
    var command: [String] = []

    /// Options whose value is the next word.
    static let optionsTakingValue: Set<String> = Set(environmentOptions.map { "--" + $0.name } + ["-l"])

    /// The options an OVERSEERD_* variable can set.
    static let environmentOptions: [(name: String, kind: EnvironmentOptions.Kind)] = [
        ("listen", .repeated), ("backlog", .single), ("unix-mode", .single), ("ready", .single),
        ("ready-timeout", .single), ("restart-signal", .single), ("stop-signal", .single),
        ("stop-timeout", .single), ("parent-death-signal", .single), ("log-level", .single),
    ]

    /// The checked configuration.
    func makeConfiguration(command words: [String]) throws(ConfigurationError) -> Configuration {
        guard let program = words.first else {
            throw ConfigurationError("no program given: write overseerd [OPTIONS] -- PROGRAM [ARGS...]")
        }
        var configuration = Configuration(program: program, arguments: Array(words.dropFirst()))
        configuration.listeners = try listen.map { text throws(ConfigurationError) in try ListenerSpec(parsing: text) }
        configuration.backlog = backlog
        if let unixMode {
            guard let mode = UInt32(unixMode, radix: 8) else {
                throw ConfigurationError("bad --unix-mode \"\(unixMode)\": give octal permissions such as 660")
            }
            configuration.unixMode = mode
        }
        configuration.readiness = try ReadinessMode(parsing: ready)
        configuration.readyTimeout = try Duration(parsing: readyTimeout)
        configuration.restartSignal = try SignalNumber.parse(restartSignal)
        configuration.stopSignal = try SignalNumber.parse(stopSignal)
        configuration.stopTimeout = try Duration(parsing: stopTimeout)
        configuration.parentDeathSignal = parentDeathSignal.lowercased() == "none" ? nil : try SignalNumber.parse(parentDeathSignal)
        try configuration.validate()
        return configuration
    }

    func makeLogLevel() throws(ConfigurationError) -> Logger.Level {
        switch logLevel.lowercased() {
        case "trace": .trace
        case "debug": .debug
        case "info": .info
        case "notice": .notice
        case "warning", "warn": .warning
        case "error": .error
        case "critical": .critical
        default: throw ConfigurationError("bad --log-level \"\(logLevel)\": write debug, info, notice, warning or error")
        }
    }
}

import ArgumentParser
import Logging
import OverseerCore
import OverseerProtocol
import OverseerSystem

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

            Control a running overseerd with `overseerd status [--json]`, `overseerd metrics` and \
            `overseerd restart [--wait]` (see `overseerd status --help`).

            Exit codes: the child's own, or 64 usage error, 69 first child never ready, \
            71 system call failed at start, 126 program not executable, 127 program not found.
            """,
        version: version)

    @Option(name: [.short, .customLong("listen")],
            help: ArgumentHelp("A socket to own and pass on: [NAME=]HOST:PORT, [IPV6]:PORT, :PORT, udp:HOST:PORT or unix:/path. Repeatable; fds follow this order. Unnamed ones are named \"unknown\".",
                               valueName: "[name=]address"))
    var listen: [String] = []

    @Option(help: ArgumentHelp("listen(2) backlog of stream listeners.", valueName: "n"))
    var backlog: String = "4096"

    @Option(name: .customLong("unix-mode"), help: ArgumentHelp("Permissions of unix socket files, in octal (e.g. 660).", valueName: "mode"))
    var unixMode: String?

    @Option(name: .customLong("ready"), help: ArgumentHelp("When a new child counts as ready: notify (it sends READY=1) or delay:DURATION (it stayed up that long).", valueName: "mode"))
    var ready: String = ReadinessMode.default.description

    @Option(name: .customLong("ready-timeout"), help: ArgumentHelp("A new child not ready by then has failed.", valueName: "duration"))
    var readyTimeout: String = "60s"

    @Option(name: .customLong("restart-signal"), help: ArgumentHelp("The signal that starts a graceful restart.", valueName: "signal"))
    var restartSignal: String = "USR2"

    @Option(name: .customLong("reexec-signal"), help: ArgumentHelp("A signal that makes overseerd re-execute its own binary (after a package upgrade), keeping sockets and child; default none (use `overseerd reexec`).", valueName: "signal"))
    var reexecSignal: String?

    @Option(name: .customLong("stop-signal"), help: ArgumentHelp("The signal that asks an old child to stop.", valueName: "signal"))
    var stopSignal: String = "TERM"

    @Option(name: .customLong("stop-timeout"), help: ArgumentHelp("How long a stopping child has before SIGKILL.", valueName: "duration"))
    var stopTimeout: String = "30s"

    @Option(name: .customLong("parent-death-signal"), help: ArgumentHelp("The signal a child gets if overseerd dies, or none.", valueName: "signal"))
    var parentDeathSignal: String = "TERM"

    @Flag(name: .customLong("subreaper"), help: "Become a child subreaper: processes the child orphans come to overseerd, which reaps them (always done as PID 1 of a PID namespace, a container).")
    var subreaper = false

    @Option(name: .customLong("watchdog"), help: ArgumentHelp("Under a systemd watchdog (WatchdogSec=): auto pings while a child lives; relay pings only while the serving child sends WATCHDOG=1 itself.", valueName: "mode"))
    var watchdog: String = "auto"

    @Option(name: .customLong("control-socket"), help: ArgumentHelp("The control socket for `overseerd status` and `overseerd restart [--wait]`, or none (default: $RUNTIME_DIRECTORY/overseerd.sock, /run/overseerd/overseerd.sock for root).", valueName: "path"))
    var controlSocket: String?

    @Option(name: .customLong("metrics-listen"), help: ArgumentHelp("Serve Prometheus metrics over HTTP at GET /metrics on HOST:PORT, [IPV6]:PORT or unix:/path (not passed to the child).", valueName: "address"))
    var metricsListen: String?

    @Option(name: .customLong("fetch"), help: ArgumentHelp("Where new binaries come from: a path or file:///path (watched with inotify), http(s)://URL, s3://BUCKET/KEY or github:OWNER/REPO.", valueName: "url"))
    var fetch: String?

    @Option(name: .customLong("manifest"), help: ArgumentHelp("Where a release manifest comes from (a path, http(s)://URL or s3://BUCKET/KEY): JSON naming the version, the binary's url and sha256, the staging percent and yanked versions. Polled like --fetch, exclusive with it.", valueName: "url"))
    var manifest: String?

    @Option(name: .customLong("host-id"), help: ArgumentHelp("This host's id for staged rollouts (default: /etc/machine-id).", valueName: "id"))
    var hostID: String?

    @Option(name: .customLong("fetch-interval"), help: ArgumentHelp("Between polls (default 30s for a file, 5m otherwise; jittered).", valueName: "duration"))
    var fetchInterval: String?

    @Option(name: .customLong("fetch-timeout"), help: ArgumentHelp("The longest one network poll may take; overseerd-fetch is killed after it.", valueName: "duration"))
    var fetchTimeout: String = "15m"

    @Option(name: .customLong("sha256"), help: ArgumentHelp("The SHA-256 a new binary must have.", valueName: "hex"))
    var sha256: String?

    @Option(name: .customLong("checksum"), help: ArgumentHelp("sidecar: a new binary must match URL.sha256 (or PATH.sha256).", valueName: "source"))
    var checksum: String?

    @Option(name: .customLong("minisign-key"), help: ArgumentHelp("A new binary (or a --manifest) must carry a minisign signature (URL.minisig) by this key: a .pub file or its base64 line. Repeatable, with --signatures-required.", valueName: "key"))
    var minisignKey: [String] = []

    @Option(name: .customLong("check"), help: ArgumentHelp("How a new binary proves it starts: token (prints OVERSEER_CHECK_TOKEN back), exec:ARGS (exits 0), or none.", valueName: "mode"))
    var check: String = "token"

    @Option(name: .customLong("check-timeout"), help: ArgumentHelp("How long the start check may take.", valueName: "duration"))
    var checkTimeout: String = "5s"

    @Option(name: .customLong("pre-upgrade"), help: ArgumentHelp("A shell command run with the new binary's path as its argument; non-zero rejects it.", valueName: "command"))
    var preUpgrade: String?

    @Flag(name: .customLong("no-restart"), help: "Install new binaries without restarting; the next restart uses them.")
    var noRestart = false

    @Option(name: .customLong("probation"), help: ArgumentHelp("After an upgrade, the new binary's generation must serve this long; if it exits sooner, the previous binary is put back and serves again (0 turns it off).", valueName: "duration"))
    var probation: String = "30s"

    @Option(name: .customLong("max-binary-size"), help: ArgumentHelp("The largest binary taken (e.g. 500M, 1G).", valueName: "size"))
    var maxBinarySize: String = "1G"

    @Option(name: .customLong("fetch-user"), help: ArgumentHelp("Run overseerd-fetch as this user, with no_new_privs.", valueName: "user"))
    var fetchUser: String?

    @Option(name: .customLong("probation-watchdog"), help: ArgumentHelp("During probation, a child that sends WATCHDOG=1 and then stops for this long fails it, as an exit would.", valueName: "duration"))
    var probationWatchdog: String?

    @Option(name: .customLong("state-directory"), help: ArgumentHelp("Where overseerd keeps what must survive its own restarts: the program's SHA-256 (so that a start need not hash it again), rejected binaries, the one on probation (default: $STATE_DIRECTORY under systemd, else none: the hash is then kept beside the control socket).", valueName: "dir"))
    var stateDirectory: String?

    @Option(name: .customLong("fetch-helper"), help: ArgumentHelp("Path of overseerd-fetch (default: beside overseerd, then /usr/libexec/overseerd/).", valueName: "path"))
    var fetchHelper: String?

    @Option(name: .customLong("s3-endpoint"), help: ArgumentHelp("S3 endpoint for s3:// (path-style), e.g. http://127.0.0.1:9000.", valueName: "url"))
    var s3Endpoint: String?

    @Option(name: .customLong("github-api-url"), help: ArgumentHelp("GitHub API base for github: (default https://api.github.com).", valueName: "url"))
    var githubAPIURL: String?

    @Option(name: .customLong("asset-pattern"), help: ArgumentHelp("Which release asset to take for github: (a glob).", valueName: "glob"))
    var assetPattern: String?

    @Option(name: .customLong("signatures-required"), help: ArgumentHelp("How many distinct --minisign-key must have signed (URL.minisig may hold several signatures, one after another).", valueName: "n"))
    var signaturesRequired: String?

    @Flag(name: .customLong("allow-unsigned-manifest"), help: "Take a --manifest fetched over the network without a signature, on the transport's word (a warning at start).")
    var allowUnsignedManifest = false

    @Option(name: .customLong("release-name"), help: ArgumentHelp("The product name a --manifest must carry in \"name\" (default: the program's file name).", valueName: "name"))
    var releaseName: String?

    @Option(name: .customLong("log-level"), help: ArgumentHelp("debug, info, notice, warning or error.", valueName: "level"))
    var logLevel: String = "info"

    @Option(name: .customLong("child-output"), help: ArgumentHelp("inherit (the program writes to overseerd's stdout and stderr) or capture (overseerd reads them through pipes and writes each line itself, tagged with generation, pid and stream, in the --log-format).", valueName: "mode"))
    var childOutput: String = "inherit"

    @Option(name: .customLong("udp-flows"), help: ArgumentHelp("steered (each generation its own socket of a SO_REUSEPORT group; a BPF program keeps each UDP flow with the generation that took it, across restarts) or shared (one socket for all generations).", valueName: "mode"))
    var udpFlows: String = "steered"

    @Option(name: .customLong("udp-flow-timeout"), help: ArgumentHelp("A steered UDP flow with no datagram for this long is forgotten: its next one is a new flow.", valueName: "duration"))
    var udpFlowTimeout: String = "125s"

    @Option(name: .customLong("log-format"), help: ArgumentHelp("text, json (one object per line on stderr) or journal (journald's native protocol, with OVERSEERD_* fields); default journal when stderr is the journal (JOURNAL_STREAM), text otherwise.", valueName: "format"))
    var logFormat: String?

    @Option(name: .customLong("workers"), help: ArgumentHelp("Run N processes of the program on the same sockets (each gets OVERSEER_WORKER 0…N-1 and OVERSEER_WORKERS); a restart replaces them --roll-batch at a time, a worker that exits is started again.", valueName: "n"))
    var workers: String = "1"

    @Option(name: .customLong("roll-batch"), help: ArgumentHelp("With --workers, how many workers a restart replaces at a time (never fewer than N ready).", valueName: "k"))
    var rollBatch: String = "1"

    @Option(name: .customLong("worker-restart-max-delay"), help: ArgumentHelp("With --workers, the longest wait before a worker that exited starts again (from 100ms, doubling; reset after a minute ready).", valueName: "duration"))
    var workerRestartMaxDelay: String = "10s"

    @Option(name: .customLong("worker-crash-window"), help: ArgumentHelp("With --workers, when every worker has exited within this window and none is ready, overseerd exits as the last one did.", valueName: "duration"))
    var workerCrashWindow: String = "30s"

    /// The program and its arguments: not parsed here (see `CommandSplit`), declared for --help.
    @Argument(help: ArgumentHelp("The program to run and its arguments, after --.", valueName: "program"))
    var command: [String] = []

    /// `--option VALUE` as `--option=VALUE` (and `-l VALUE` as `--listen=VALUE`) for
    /// every option that takes a value, as `CommandSplit` and getopt read them: the
    /// next word is the value even when it starts with `-` (`--stop-timeout -5s`
    /// gets its own message, not "missing value"). An empty value goes the other way,
    /// `--option=` to `--option ""`, so that it gets the option's own message too.
    static func joiningValues(_ options: [String]) -> [String] {
        var result: [String] = []
        var index = 0
        while index < options.count {
            let word = options[index]
            if optionsTakingValue.contains(word), index + 1 < options.count {
                let long = word.hasPrefix("--") ? word : "--" + (shortOptions.first { $0.value == word }?.key ?? "")
                let value = options[index + 1]
                result += value.isEmpty ? [long, value] : [long + "=" + value]
                index += 2
            } else if word.hasSuffix("="), optionsTakingValue.contains(String(word.dropLast())) {
                let option = String(word.dropLast())
                let long = option.hasPrefix("--") ? option : "--" + (shortOptions.first { $0.value == option }?.key ?? "")
                result += [long, ""]
                index += 1
            } else {
                result.append(word)
                index += 1
            }
        }
        return result
    }

    /// Options whose value is the next word.
    static let optionsTakingValue: Set<String> = Set(environmentOptions.filter { $0.kind != .flag }.map { "--" + $0.name } + ["-l"])

    /// Short spellings of options, so that `-l` on the command line also overrides OVERSEERD_LISTEN.
    static let shortOptions: [String: String] = ["listen": "-l"]

    /// The options an OVERSEERD_* variable can set.
    static let environmentOptions: [(name: String, kind: EnvironmentOptions.Kind)] = [
        ("listen", .repeated), ("backlog", .single), ("unix-mode", .single), ("ready", .single),
        ("ready-timeout", .single), ("restart-signal", .single), ("reexec-signal", .single), ("stop-signal", .single),
        ("stop-timeout", .single), ("parent-death-signal", .single), ("log-level", .single), ("log-format", .single), ("child-output", .single),
        ("watchdog", .single), ("control-socket", .single), ("metrics-listen", .single), ("fetch", .single), ("manifest", .single), ("host-id", .single), ("fetch-interval", .single), ("fetch-timeout", .single), ("sha256", .single), ("checksum", .single),
        ("minisign-key", .repeated), ("check", .single), ("check-timeout", .single), ("pre-upgrade", .single),
        ("no-restart", .flag), ("subreaper", .flag), ("probation", .single), ("probation-watchdog", .single), ("max-binary-size", .single), ("fetch-user", .single), ("fetch-helper", .single), ("state-directory", .single),
        ("s3-endpoint", .single), ("github-api-url", .single), ("asset-pattern", .single),
        ("signatures-required", .single), ("allow-unsigned-manifest", .flag), ("release-name", .single),
        ("udp-flows", .single), ("udp-flow-timeout", .single),
        ("workers", .single), ("roll-batch", .single), ("worker-restart-max-delay", .single), ("worker-crash-window", .single),
    ]

    /// The checked configuration.
    func makeConfiguration(command words: [String], environment: [String: String]) throws(ConfigurationError) -> Configuration {
        guard let program = words.first else {
            throw ConfigurationError("no program given: write overseerd [OPTIONS] -- PROGRAM [ARGS...]")
        }
        var configuration = Configuration(program: program, arguments: Array(words.dropFirst()))
        configuration.listeners = try listen.map { text throws(ConfigurationError) in try ListenerSpec(parsing: text) }
        guard let backlogValue = Int32(backlog) else {
            throw ConfigurationError("bad backlog \"\(backlog)\": give a number from 1 to 65535")
        }
        configuration.backlog = backlogValue
        if let unixMode {
            guard let mode = UInt32(unixMode, radix: 8) else {
                throw ConfigurationError("bad --unix-mode \"\(unixMode)\": give octal permissions such as 660")
            }
            configuration.unixMode = mode
        }
        configuration.readiness = try ReadinessMode(parsing: ready)
        configuration.readyTimeout = try Duration(parsing: readyTimeout, option: "ready-timeout")
        configuration.restartSignal = try SignalNumber.parse(restartSignal)
        configuration.stopSignal = try SignalNumber.parse(stopSignal)
        configuration.reexecSignal = try reexecSignal.map { text throws(ConfigurationError) in try SignalNumber.parse(text) }
        configuration.stopTimeout = try Duration(parsing: stopTimeout, option: "stop-timeout")
        configuration.parentDeathSignal = parentDeathSignal.lowercased() == "none" ? nil : try SignalNumber.parse(parentDeathSignal)
        configuration.upgrade = try makeUpgradeSettings()
        configuration.subreaper = subreaper
        configuration.childOutput = try ChildOutputMode(parsing: childOutput)
        configuration.udpFlows = try UDPFlowMode(parsing: udpFlows)
        configuration.udpFlowTimeout = try Duration(parsing: udpFlowTimeout, option: "udp-flow-timeout")
        if let stateDirectory {
            guard stateDirectory.hasPrefix("/") else {
                throw ConfigurationError("bad --state-directory \"\(EscapedText.escape(stateDirectory, limit: 128))\": give an absolute path")
            }
            configuration.stateDirectory = stateDirectory
        } else if let systemd = environment["STATE_DIRECTORY"]?.split(separator: ":").first, !systemd.isEmpty {
            configuration.stateDirectory = String(systemd)
        }
        if configuration.upgrade != nil, configuration.upgrade?.stateDirectory == nil {
            configuration.upgrade?.stateDirectory = configuration.stateDirectory
        }
        switch watchdog {
        case "auto": configuration.watchdogRelay = false
        case "relay": configuration.watchdogRelay = true
        default: throw ConfigurationError("bad --watchdog \"\(watchdog)\": write auto or relay")
        }
        if let metricsListen {
            do {
                configuration.metricsListen = try ListenAddress(parsing: metricsListen)
            } catch {
                throw ConfigurationError("bad --metrics-listen: \(error)")
            }
        }
        configuration.controlSocket = controlSocket == "none" ? nil : controlSocket ?? ControlSocketPath.defaultPath(environment: environment, uid: ProcessCredentials.realUID)
        configuration.workers = try makeWorkerSettings()
        try configuration.validate()
        return configuration
    }

    func makeWorkerSettings() throws(ConfigurationError) -> WorkerSettings {
        guard let count = Int(workers) else {
            throw ConfigurationError("bad --workers \"\(EscapedText.escape(workers, limit: 32))\": give a number of processes from 1 to \(WorkerSettings.maximumCount)")
        }
        guard let batch = Int(rollBatch) else {
            throw ConfigurationError("bad --roll-batch \"\(EscapedText.escape(rollBatch, limit: 32))\": give a number from 1 to --workers")
        }
        return WorkerSettings(count: count, rollBatch: batch, restartMaxDelay: try Duration(parsing: workerRestartMaxDelay, option: "worker-restart-max-delay"),
                              crashWindow: try Duration(parsing: workerCrashWindow, option: "worker-crash-window"))
    }

    func makeUpgradeSettings() throws(ConfigurationError) -> UpgradeSettings? {
        if fetch != nil, manifest != nil {
            throw ConfigurationError("--fetch and --manifest are exclusive: a manifest names the binary itself")
        }
        guard let location = fetch ?? manifest else {
            let stray = [("--sha256", sha256), ("--checksum", checksum), ("--minisign-key", minisignKey.first),
                         ("--pre-upgrade", preUpgrade), ("--fetch-user", fetchUser), ("--host-id", hostID),
                         ("--signatures-required", signaturesRequired), ("--release-name", releaseName),
                         ("--allow-unsigned-manifest", allowUnsignedManifest ? "" : nil)].first { $0.1 != nil }
            if let stray {
                throw ConfigurationError("\(stray.0) needs --fetch or --manifest: it applies to new binaries, and none are fetched")
            }
            // Unused without upgrades, but a bad value is still a mistake to say (it was ignored).
            for (text, flag) in [(probation, "probation"), (checkTimeout, "check-timeout"), (fetchTimeout, "fetch-timeout"),
                                 (probationWatchdog, "probation-watchdog"), (fetchInterval, "fetch-interval")] {
                if let text { _ = try Duration(parsing: text, option: flag) }
            }
            return nil
        }
        var settings = UpgradeSettings(source: try .init(parsing: location))
        if manifest != nil {
            if location.hasPrefix("github:") {
                throw ConfigurationError("bad --manifest \"\(EscapedText.escape(location, limit: 128))\": give a path, an http(s):// URL or an s3:// URL")
            }
            if sha256 != nil || checksum != nil {
                throw ConfigurationError("--sha256 and --checksum do not go with --manifest: the manifest's sha256 is checked")
            }
            settings.manifest = true
            settings.hostID = hostID
        } else if hostID != nil {
            throw ConfigurationError("--host-id needs --manifest: it picks this host's stage of a rollout")
        }
        settings.interval = try fetchInterval.map { text throws(ConfigurationError) in try Duration(parsing: text, option: "fetch-interval") }
        settings.fetchTimeout = try Duration(parsing: fetchTimeout, option: "fetch-timeout")
        settings.sha256 = sha256
        if let checksum {
            guard checksum == "sidecar" else {
                throw ConfigurationError("bad --checksum \"\(checksum)\": the only source is sidecar (URL.sha256)")
            }
            settings.sidecarChecksum = true
        }
        settings.minisignKeys = minisignKey
        if let signaturesRequired {
            guard let count = Int(signaturesRequired), count > 0 else {
                throw ConfigurationError("bad --signatures-required \"\(EscapedText.escape(signaturesRequired, limit: 32))\": give a whole number from 1 to the number of --minisign-key")
            }
            settings.signaturesRequired = count
        }
        settings.allowUnsignedManifest = allowUnsignedManifest
        settings.releaseName = releaseName
        settings.check = try .init(parsing: check)
        settings.checkTimeout = try Duration(parsing: checkTimeout, option: "check-timeout")
        settings.preUpgrade = preUpgrade
        settings.noRestart = noRestart
        settings.probation = try Duration(parsing: probation, option: "probation")
        if let probationWatchdog {
            let limit = try Duration(parsing: probationWatchdog, option: "probation-watchdog")
            guard limit > .zero else {
                throw ConfigurationError("--probation-watchdog must be longer than 0 (leave it out to not watch)")
            }
            settings.probationWatchdog = limit
        }
        settings.maxBinarySize = try ByteSize.parse(maxBinarySize)
        settings.fetchUser = fetchUser
        settings.fetchHelperPath = fetchHelper
        settings.s3Endpoint = s3Endpoint
        settings.githubAPIURL = githubAPIURL
        settings.assetPattern = assetPattern
        return settings
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

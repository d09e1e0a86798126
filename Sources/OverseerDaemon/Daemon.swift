import Logging
import OverseerCore
import OverseerProtocol
import OverseerSystem

/// Starting overseerd: check the program, take the sockets, hand over to the `Supervisor`.
public enum Daemon {
    /// Runs overseerd with a checked configuration; exits the way the child did,
    /// or with one of `OverseerExitCode`'s codes. Signals must already be blocked
    /// (`SignalSource.blockAllSignals()`, first thing in main).
    /// `logFormat`: as given (`--log-format`), nil for the automatic choice; the
    /// captured output of the children (`--child-output capture`) is written in it.
    public static func run(_ configuration: Configuration, logger: Logger, logFormat: LogFormat? = nil) -> Never {
        let given = ProcessEnvironment.current()
        // The state fd an earlier image left is for this image only.
        let stateFD = given.dictionary[HandoverState.environmentVariable].flatMap(Int32.init)
        let environment = ProcessEnvironment(entries: given.entries.filter { $0.name != HandoverState.environmentVariable })
        let variables = environment.dictionary

        var upgradePlan: UpgradeDriver.Plan?
        if let settings = configuration.upgrade {
            do {
                upgradePlan = try UpgradeDriver.Plan(settings)
            } catch where stateFD != nil {
                // After a re-exec a child is running: it must not lose its supervisor over this.
                logger.log(.error, .configurationError, "upgrades are off: \(error)")
            } catch {
                fail("\(error) — see overseerd --help", code: OverseerExitCode.usage)
            }
        }

        // After a re-exec the child already runs: from here on this image only takes it over.
        if let stateFD {
            resume(configuration, environment: environment, stateFD: stateFD, upgradePlan: upgradePlan, logger: logger,
                   logFormat: logFormat)
        }

        // A program that cannot run is found out before any socket is made.
        do {
            _ = try ProgramLocator.resolve(configuration.program, path: variables["PATH"])
        } catch {
            fail(error.description, code: error.exitCode)
        }

        var inherited: [Listener] = []
        do {
            if let passed = try ListenFDs.parse(environment: variables, ownPID: Posix.pid) {
                inherited = try ListenerBinder.adopt(passed)
            }
        } catch let error as ProtocolError {
            fail("cannot use the sockets passed to overseerd: \(error) — check the socket unit or activator", code: OverseerExitCode.usage)
        } catch let error as ListenError {
            // LISTEN_FDS naming fds that are not open sockets (LISTEN_FDS=999): a bad
            // environment, as a bad LISTEN_FDNAMES is, not a failed system call.
            fail(error.description, code: OverseerExitCode.usage)
        } catch {
            fail("\(error)", code: OverseerExitCode.systemFailure)
        }
        // UDP sockets are bound for steering (SO_REUSEPORT) only where it can be had; the Supervisor says why not.
        let steerUDP = configuration.udpFlows == .steered && configuration.listeners.contains { $0.address.isUDP }
            && UDPSteering.probe() == nil
        var listeners: [Listener] = []
        for slot in ListenerOrder.arrange(inherited: inherited.map(\.name), listens: configuration.listeners) {
            switch slot {
            case let .inherited(index):
                listeners.append(inherited[index])
            case let .bind(index):
                let spec = configuration.listeners[index]
                do {
                    listeners.append(try ListenerBinder.bind(spec, backlog: configuration.backlog, unixMode: configuration.unixMode,
                                                             reusePort: steerUDP))
                } catch {
                    ListenerBinder.close(listeners.filter { $0.origin != .inherited })
                    fail(error.description, code: OverseerExitCode.systemFailure)
                }
            }
        }
        for spec in configuration.listeners where spec.isNamed && inherited.contains(where: { $0.name == spec.name }) {
            // A socket systemd handed back (fd store, or a socket unit) under this name is the same listener.
            logger.log(.info, .listening, "using the inherited socket named \(spec.name) instead of binding \(spec.address)")
        }
        for (index, listener) in listeners.enumerated() {
            let origin = listener.origin == .inherited ? ", inherited" : ""
            logger.log(.info, .listening, "listening on \(listener.localAddress) as \(listener.name) (\(listener.kind), fd \(Int(ListenFDs.firstFD) + index)\(origin))")
        }

        var metricsListener: Listener?
        if let address = configuration.metricsListen {
            do {
                metricsListener = try bindMetrics(address, unixMode: configuration.unixMode)
            } catch {
                ListenerBinder.close(listeners.filter { $0.origin != .inherited })
                fail(error.description, code: OverseerExitCode.systemFailure)
            }
        }

        let supervisor: Supervisor
        do {
            supervisor = try Supervisor(configuration: configuration, environment: environment, listeners: listeners,
                                        metricsListener: metricsListener, upgradePlan: upgradePlan, logger: logger)
        } catch {
            ListenerBinder.close(listeners + [metricsListener].compactMap { $0 })
            fail("cannot start: \(error)", code: OverseerExitCode.systemFailure)
        }
        supervisor.childOutput = makeChildOutput(configuration, supervisor: supervisor, logFormat: logFormat, environment: variables)
        supervisor.run()
    }

    /// The relay of `--child-output capture`, writing in the format overseerd's own lines use.
    /// After a re-exec, the relay reads on from the pipes the earlier image handed over (`adopting`).
    private static func makeChildOutput(_ configuration: Configuration, supervisor: Supervisor, logFormat: LogFormat?,
                                        environment: [String: String],
                                        adopting pipes: [HandoverState.OutputRecord] = []) -> ChildOutputRelay? {
        // Pipes handed over are read whatever the mode: a child writing to them must never meet EPIPE.
        guard configuration.childOutput == .capture || !pipes.isEmpty else { return nil }
        let (format, stderrIsJournal) = resolvedFormat(logFormat, environment: environment)
        let writer = ChildLineWriter(format: format, program: ChildLineWriter.programName(configuration.program),
                                     stderrIsJournal: stderrIsJournal)
        let relay = ChildOutputRelay(loop: supervisor.reactor, writer: writer)
        do {
            try relay.adopt(pipes)
        } catch {
            supervisor.logger.log(.error, .internalError, "cannot read the output pipes handed over: \(error)")
        }
        return relay
    }

    /// The format in use: `format`, or the journal when stderr is its stream, else
    /// text; text when the journal is asked for and journald's socket is missing.
    static func resolvedFormat(_ format: LogFormat?, environment: [String: String]) -> (format: LogFormat, stderrIsJournal: Bool) {
        let stderrIsJournal = DaemonLogHandler.stderrIsJournal(environment: environment)
        let chosen = format ?? LogFormat.automatic(stderrIsJournal: stderrIsJournal)
        return (chosen == .journal && !JournalSocket.isAvailable ? .text : chosen, stderrIsJournal)
    }

    /// Goes on where an earlier image of overseerd re-executed into this one.
    private static func resume(_ configuration: Configuration, environment: ProcessEnvironment, stateFD: Int32,
                               upgradePlan: UpgradeDriver.Plan?, logger: Logger, logFormat: LogFormat?) -> Never {
        let state: HandoverState
        do {
            state = try Handover.read(fd: stateFD)
        } catch {
            fail("cannot take over from the previous overseerd: \(error)", code: OverseerExitCode.systemFailure)
        }
        if let problem = Supervisor.workerAdoptionProblem(state, settings: configuration.workers) {
            fail("cannot take over the workers from the previous overseerd: \(problem)", code: OverseerExitCode.systemFailure)
        }
        for fd in state.fds {
            do { try Posix.setInheritable(fd, false) } catch {
                fail("cannot take over fd \(fd) from the previous overseerd: \(error)", code: OverseerExitCode.systemFailure)
            }
        }
        let listeners = state.listeners.map(Handover.listener(from:))
        for (index, listener) in listeners.enumerated() {
            logger.log(.info, .listening, "listening on \(listener.localAddress) as \(listener.name) (\(listener.kind), fd \(Int(ListenFDs.firstFD) + index), kept)")
        }
        // Kept across the exec; bound now only when the earlier image had none (it ran without --metrics-listen).
        var metricsListener = state.metricsListener.map(Handover.listener(from:))
        if metricsListener == nil, let address = configuration.metricsListen {
            do {
                metricsListener = try bindMetrics(address, unixMode: configuration.unixMode)
            } catch {
                logger.log(.error, .metricsEndpoint, "no metrics endpoint: \(error)")
            }
        }
        do {
            let supervisor = try Supervisor(configuration: configuration, environment: environment, listeners: listeners,
                                            metricsListener: metricsListener, upgradePlan: upgradePlan, handover: state,
                                            logger: logger)
            supervisor.childOutput = makeChildOutput(configuration, supervisor: supervisor, logFormat: logFormat,
                                                     environment: environment.dictionary, adopting: state.childOutput)
            supervisor.run()
        } catch {
            fail("cannot take over from the previous overseerd: \(error)", code: OverseerExitCode.systemFailure)
        }
    }

    /// overseerd's logger: `format`, or when none is given the journal if stderr
    /// is the journal's stream (JOURNAL_STREAM), text otherwise.
    public static func makeLogger(level: Logger.Level, format: LogFormat?, environment: [String: String]) -> Logger {
        let (chosen, stderrIsJournal) = resolvedFormat(format, environment: environment)
        let journalMissing = (format ?? LogFormat.automatic(stderrIsJournal: stderrIsJournal)) == .journal && chosen != .journal
        var logger = Logger(label: "overseerd") { label in
            DaemonLogHandler(label: label, level: level, format: chosen, stderrIsJournal: stderrIsJournal)
        }
        logger.logLevel = level
        if journalMissing {
            logger.log(.warning, .configurationWarning, "no journald at \(JournalSocket.path): logging to stderr as text instead")
        }
        return logger
    }

    /// The `--metrics-listen` socket: a stream listener named `metrics`, never passed to the child.
    private static func bindMetrics(_ address: ListenAddress, unixMode: UInt32?) throws(ListenError) -> Listener {
        let name = (try? SocketName("metrics")) ?? .unnamed
        return try ListenerBinder.bind(ListenerSpec(name: name, address: address), backlog: 64, unixMode: unixMode)
    }

    /// Prints `overseerd: MESSAGE` and exits with `code`.
    public static func fail(_ message: String, code: Int32) -> Never {
        Posix.writeStandardError("overseerd: \(message)\n")
        Posix.exit(code)
    }
}

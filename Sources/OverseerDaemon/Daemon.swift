#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import OverseerCore
import OverseerProtocol
import OverseerSystem

/// Starting overseerd: check the program, take the sockets, hand over to the `Supervisor`.
public enum Daemon {
    /// Runs overseerd with a checked configuration; exits the way the child did,
    /// or with one of `OverseerExitCode`'s codes. Signals must already be blocked
    /// (`SignalSource.blockAllSignals()`, first thing in main).
    public static func run(_ configuration: Configuration, logLevel: Logger.Level) -> Never {
        let environment = ProcessEnvironment.current()
        let variables = environment.dictionary
        let journal = StderrLogHandler.stderrIsJournal(environment: variables)
        var logger = Logger(label: "overseerd") { label in
            StderrLogHandler(label: label, level: logLevel, journal: journal)
        }
        logger.logLevel = logLevel

        // A program that cannot run is found out before any socket is made.
        do {
            _ = try ProgramLocator.resolve(configuration.program, path: variables["PATH"])
        } catch {
            fail(error.description, code: error.exitCode)
        }

        var listeners: [Listener] = []
        do {
            if let inherited = try ListenFDs.parse(environment: variables, ownPID: getpid()) {
                listeners += try ListenerBinder.adopt(inherited)
            }
        } catch let error as ProtocolError {
            fail("cannot use the sockets passed to overseerd: \(error) — check the socket unit or activator", code: OverseerExitCode.usage)
        } catch {
            fail("\(error)", code: OverseerExitCode.systemFailure)
        }
        for spec in configuration.listeners {
            do {
                listeners.append(try ListenerBinder.bind(spec, backlog: configuration.backlog, unixMode: configuration.unixMode))
            } catch {
                ListenerBinder.close(listeners.filter { $0.origin != .inherited })
                fail(error.description, code: OverseerExitCode.systemFailure)
            }
        }
        for (index, listener) in listeners.enumerated() {
            let origin = listener.origin == .inherited ? ", inherited" : ""
            logger.info("listening on \(listener.localAddress) as \(listener.name) (\(listener.kind), fd \(Int(ListenFDs.firstFD) + index)\(origin))")
        }

        let supervisor: Supervisor
        do {
            supervisor = try Supervisor(configuration: configuration, environment: environment,
                                        listeners: listeners, logger: logger)
        } catch {
            ListenerBinder.close(listeners)
            fail("cannot start: \(error)", code: OverseerExitCode.systemFailure)
        }
        supervisor.run()
    }

    /// Prints `overseerd: MESSAGE` and exits with `code`.
    public static func fail(_ message: String, code: Int32) -> Never {
        var bytes = Array("overseerd: \(message)\n".utf8)
        _ = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        exit(code)
    }
}

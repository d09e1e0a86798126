import Glibc
import OverseerCore
import OverseerDaemon
import OverseerProtocol
import OverseerSystem

/// `overseerd status [--json]`, `overseerd restart [--wait]` and `overseerd reexec`:
/// one request to a running overseerd over its control socket.
enum ControlClient {
    /// Exit codes of the control commands.
    static let failed: Int32 = 1
    static let unreachable: Int32 = 69

    /// How long to wait for the answer when `--timeout` is not given.
    static let defaultTimeout = Duration.seconds(300)

    /// Runs the command in `arguments` (starting with `status`, `health`, `metrics`, `restart`, `reexec` or `forget`); never returns.
    static func run(_ arguments: [String], environment: [String: String]) -> Never {
        // A command, not the daemon: Ctrl-C, `timeout`'s SIGTERM and a closed
        // terminal's SIGHUP end it, whatever mask it inherited.
        SignalMask.unblockAll()
        var words = Array(arguments.dropFirst())
        var path = ControlSocketPath.defaultPath(environment: environment, uid: ProcessCredentials.realUID)
        if let value = environment["OVERSEERD_CONTROL_SOCKET"] { path = value }
        var timeout = defaultTimeout
        var flags: [String] = []
        while let word = words.first {
            words.removeFirst()
            if word == "--control-socket" || word.hasPrefix("--control-socket=") || word == "--timeout" || word.hasPrefix("--timeout=") {
                let (name, inline) = word.contains("=") ? (String(word.split(separator: "=")[0]), String(word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[1])) : (word, nil)
                guard let value = inline ?? words.first else { Daemon.fail("\(name) needs a value — see overseerd \(arguments[0]) --help", code: OverseerExitCode.usage) }
                if inline == nil { words.removeFirst() }
                if name == "--control-socket" {
                    path = value
                } else {
                    do {
                        timeout = try Duration(parsing: value, option: "timeout")
                    } catch {
                        Daemon.fail("\(error) — see overseerd \(arguments[0]) --help", code: OverseerExitCode.usage)
                    }
                    guard timeout > .zero else {
                        Daemon.fail("--timeout must be longer than 0 — see overseerd \(arguments[0]) --help", code: OverseerExitCode.usage)
                    }
                }
            } else if word == "-h" || word == "--help" {
                print("""
                    USAGE: overseerd status [--json] [--timeout DURATION] [--control-socket PATH]
                           overseerd health [--timeout DURATION] [--control-socket PATH]
                           overseerd metrics [--timeout DURATION] [--control-socket PATH]
                           overseerd restart [--wait] [--timeout DURATION] [--control-socket PATH]
                           overseerd reexec [--timeout DURATION] [--control-socket PATH]
                           overseerd forget SHA256 [--control-socket PATH]
                           overseerd forget-keys [--control-socket PATH]

                    Asks the overseerd listening on PATH (default \(path); also OVERSEERD_CONTROL_SOCKET).
                    health exits 0 when a generation serves and is ready (also during a restart), and 1 with
                    one line otherwise (starting, no serving generation, rolling back): a container's probe.
                    metrics prints overseerd's metrics in the Prometheus text format (as --metrics-listen serves them).
                    restart --wait returns once the new generation serves (exit 0) or the restart failed (exit 1).
                    reexec makes overseerd run its own binary anew (after a package upgrade), keeping the
                    listening sockets and the serving child.
                    forget takes a rejected binary (its SHA-256, as the log shows it) off the rejected list,
                    in memory and in --state-directory, so that it may be installed again.
                    forget-keys drops the manifest keys a key rotation installed: manifests must be signed
                    by the --minisign-key keys of the command line again.
                    --timeout gives up when no answer came by then (default \(defaultTimeout.shortDescription)); a restart
                    still under way goes on. Ctrl-C (SIGINT) or SIGTERM ends the command at once, with the
                    usual 130 or 143 of a command killed by that signal.
                    Only a daemon run by root or by your own user is believed: a socket run by anyone else
                    is not asked (exit 69).
                    Exit codes: 0 done, 1 the daemon answered with an error or not within --timeout,
                    64 usage, 69 no daemon of yours reachable at PATH.
                    """)
                exit(0)
            } else {
                flags.append(word)
            }
        }
        if path.isEmpty {
            Daemon.fail("--control-socket needs a path — see overseerd \(arguments[0]) --help", code: OverseerExitCode.usage)
        }
        if path == "none" {
            Daemon.fail("no control socket to ask: --control-socket (or OVERSEERD_CONTROL_SOCKET) is none — give the daemon's socket path", code: unreachable)
        }
        let line = ([arguments[0]] + flags).joined(separator: " ")
        let request: ControlRequest
        do {
            request = try ControlRequest(parsing: line)
        } catch {
            Daemon.fail("\(error) — see overseerd \(arguments[0]) --help", code: OverseerExitCode.usage)
        }
        let answer = exchange(request, path: path, timeout: timeout)
        let lines = answer.split(separator: "\n", omittingEmptySubsequences: false)
        guard let first = lines.first, first.hasPrefix(ControlAnswer.ok) else {
            let reason = lines.first.map { $0.hasPrefix(ControlAnswer.error + " ") ? String($0.dropFirst(6)) : String($0) } ?? ""
            Daemon.fail(reason.isEmpty ? "no answer from the daemon at \(path)" : EscapedText.escape(reason, limit: 4096), code: failed)
        }
        var output = lines.dropFirst().joined(separator: "\n")
        if first.count > ControlAnswer.ok.count { output = String(first.dropFirst(ControlAnswer.ok.count + 1)) + "\n" + output }
        if !output.isEmpty, !output.hasSuffix("\n") { output += "\n" }
        print(output, terminator: "")
        exit(0)
    }

    /// Sends `request` and returns the whole answer; on any failure says why and exits.
    private static func exchange(_ request: ControlRequest, path: String, timeout: Duration) -> String {
        let deadline = ContinuousClock.now + timeout
        do {
            let connection = try ControlConnection.connect(to: path)
            defer { connection.close() }
            try connection.send(request.line + "\n", deadline: deadline)
            return String(decoding: try connection.receiveAll(deadline: deadline), as: UTF8.self)
        } catch let error where error.isTimeout {
            let still = request.line.hasPrefix("restart") ? ": the restart may still be under way — see overseerd status" : ""
            Daemon.fail("no answer from overseerd at \(path) within \(timeout.shortDescription) (--timeout)\(still)", code: failed)
        } catch {
            Daemon.fail(error.description, code: error.isBadPath ? OverseerExitCode.usage : error.isUnreachable ? unreachable : failed)
        }
    }
}

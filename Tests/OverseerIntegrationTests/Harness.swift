#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport

/// The package's executables the integration tests run.
enum Binaries {
    static var directory: String { BuiltProducts.directory }
    static var overseerd: String { directory + "/overseerd" }
    static var testChild: String { directory + "/OverseerTestChild" }
    static var stopProbe: String { directory + "/OverseerStopProbe" }
}

extension RunningProcess {
    /// overseerd with the given arguments.
    /// Tests run side by side: unless a test names one, overseerd gets no control socket.
    static func overseerd(_ arguments: [String], environment: [String: String] = [:]) throws -> RunningProcess {
        try RunningProcess([Binaries.overseerd] + arguments,
                           environment: ["OVERSEERD_CONTROL_SOCKET": "none"].merging(environment) { $1 })
    }

    /// The bound address of the listener named `name`, from overseerd's log line
    /// (text, or the `listening` event's message with `--log-format json`).
    func listenerPort(_ name: String = "unknown", timeout: Double = 20) throws -> UInt16 {
        let line = try waitForLine(containing: "as \(name) (", timeout: timeout)
        // "overseerd: listening on 127.0.0.1:41234 as http (tcp, fd 3)", or as json
        // {…"event":"listening","message":"listening on 127.0.0.1:41234 as http (tcp, fd 3)"}:
        // the address is in no field of its own.
        let message = LoggedEvent(line: line, index: 0).map { "overseerd: " + $0.message } ?? line
        guard let address = message.split(separator: " ").dropFirst(3).first,
              let port = address.split(separator: ":").last.flatMap({ UInt16($0) }) else {
            throw HarnessError("cannot read a port from \"\(line)\"")
        }
        return port
    }
}

/// Small facts about processes, read from /proc.
enum Processes {
    static func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        // A zombie is not alive for our purposes.
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        guard let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }

    /// Waits until `pid` is gone (or a zombie).
    static func waitUntilGone(_ pid: Int32, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !isAlive(pid) { return true }
            usleep(10_000)
        }
        return false
    }

    /// The pids whose parent is `pid`.
    static func children(of pid: Int32) -> [Int32] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").compactMap { Int32($0) }
    }
}

/// A key=value report written by OverseerTestChild (OTC_REPORT).
struct ChildReport {
    let values: [String: String]

    subscript(key: String) -> String? { values[key] }

    static func read(_ path: String, timeout: Double = 10) throws -> ChildReport {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                var values: [String: String] = [:]
                for line in text.split(separator: "\n") {
                    if let equals = line.firstIndex(of: "=") {
                        values[String(line[..<equals])] = String(line[line.index(after: equals)...])
                    }
                }
                return ChildReport(values: values)
            }
            usleep(10_000)
        }
        throw HarnessError("no report at \(path) within \(timeout)s")
    }
}


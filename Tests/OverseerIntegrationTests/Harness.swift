#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerSystem
import Testing

/// Where the package's executables were built: beside the test bundle.
enum Binaries {
    static let directory: String = {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: executable).deletingLastPathComponent()
        // Inside NAME.xctest/ when the runner is a bundle directory.
        while url.path.contains(".xctest") { url.deleteLastPathComponent() }
        return url.path
    }()
    static var overseerd: String { directory + "/overseerd" }
    static var testChild: String { directory + "/OverseerTestChild" }
    static var stopProbe: String { directory + "/OverseerStopProbe" }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A running overseerd (or any program) with its stdout and stderr captured.
final class RunningProcess: @unchecked Sendable {
    let process: ChildProcess
    private var stdoutFD: Int32
    private var stderrFD: Int32
    private(set) var stdoutText = ""
    private(set) var stderrText = ""
    private(set) var exit: ProcessExit?
    private let lock = NSLock()

    var pid: Int32 { process.pid }

    /// Starts `arguments[0]` (a path) with `environment` added to this process's own.
    init(_ arguments: [String], environment: [String: String] = [:], removing: [String] = [],
         workingDirectory: String? = nil, extraFDs: [Int32] = []) throws {
        var out: [Int32] = [0, 0]
        var err: [Int32] = [0, 0]
        // Not atomic with the pipe's creation, but the spawn shim marks every fd
        // it does not hand out close-on-exec anyway.
        guard pipe(&out) == 0, pipe(&err) == 0 else { throw HarnessError("pipe failed") }
        for fd in out + err { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var merged = ProcessInfo.processInfo.environment
        for name in removing { merged[name] = nil }
        // The test runner's own systemd variables, if any, are not for overseerd.
        for name in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"] where environment[name] == nil {
            merged[name] = nil
        }
        for (name, value) in environment { merged[name] = value }
        let devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(devnull) }
        let request = ChildProcess.Request(
            path: arguments[0], arguments: arguments,
            environment: merged.map { "\($0.key)=\($0.value)" }.sorted(),
            fdMap: [devnull, out[1], err[1]] + extraFDs,
            newProcessGroup: true, workingDirectory: workingDirectory)
        process = try ChildProcess.spawn(request)
        close(out[1])
        close(err[1])
        stdoutFD = out[0]
        stderrFD = err[0]
        _ = fcntl(stdoutFD, F_SETFL, O_NONBLOCK)
        _ = fcntl(stderrFD, F_SETFL, O_NONBLOCK)
    }

    /// overseerd with the given arguments.
    /// Tests run side by side: unless a test names one, overseerd gets no control socket.
    static func overseerd(_ arguments: [String], environment: [String: String] = [:]) throws -> RunningProcess {
        try RunningProcess([Binaries.overseerd] + arguments,
                           environment: ["OVERSEERD_CONTROL_SOCKET": "none"].merging(environment) { $1 })
    }

    deinit {
        if exit == nil {
            kill(process.pid, SIGKILL)
            _ = try? waitForExit(timeout: 5)
        }
        if stdoutFD >= 0 { close(stdoutFD) }
        if stderrFD >= 0 { close(stderrFD) }
        process.release()
    }

    /// Reads what is there, waiting at most `timeoutMS` for something to happen.
    private func pump(timeoutMS: Int32) {
        var fds: [pollfd] = []
        if stdoutFD >= 0 { fds.append(pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)) }
        if stderrFD >= 0 { fds.append(pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)) }
        if exit == nil, let pidfd = process.pidfd { fds.append(pollfd(fd: pidfd.rawValue, events: Int16(POLLIN), revents: 0)) }
        if fds.isEmpty { return }
        _ = poll(&fds, nfds_t(fds.count), timeoutMS)
        drain(&stdoutFD, into: &stdoutText)
        drain(&stderrFD, into: &stderrText)
        if exit == nil, let result = process.reap() { exit = result }
    }

    private func drain(_ fd: inout Int32, into text: inout String) {
        guard fd >= 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count > 0 { text += String(decoding: buffer.prefix(count), as: UTF8.self); continue }
            if count == 0 { close(fd); fd = -1 }
            return
        }
    }

    enum Stream { case stdout, stderr }

    /// Waits until a line of `stream` contains `fragment`; returns that line.
    @discardableResult
    func waitForLine(containing fragment: String, in stream: Stream = .stderr, after skip: Int = 0,
                     timeout: Double = 20) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let text = stream == .stdout ? stdoutText : stderrText
            let lines = text.split(separator: "\n").dropFirst(skip)
            if let line = lines.first(where: { $0.contains(fragment) }) { return String(line) }
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 || (exit != nil && (stream == .stdout ? stdoutFD : stderrFD) < 0) {
                throw HarnessError("no line containing \"\(fragment)\" on \(stream) within \(timeout)s; stderr was:\n\(stderrText)\nstdout was:\n\(stdoutText)")
            }
            pump(timeoutMS: Int32(min(remaining, 0.5) * 1000) + 1)
        }
    }

    /// Lines of `stream` containing `fragment`.
    func lines(containing fragment: String, in stream: Stream = .stderr) -> [String] {
        pump(timeoutMS: 0)
        let text = stream == .stdout ? stdoutText : stderrText
        return text.split(separator: "\n").filter { $0.contains(fragment) }.map(String.init)
    }

    /// Waits for the process to end and for its output to close.
    func waitForExit(timeout: Double = 20) throws -> ProcessExit {
        let deadline = Date().addingTimeInterval(timeout)
        while exit == nil || stdoutFD >= 0 || stderrFD >= 0 {
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 {
                if let exit { return exit }
                throw HarnessError("pid \(pid) still running after \(timeout)s; stderr:\n\(stderrText)")
            }
            pump(timeoutMS: Int32(min(remaining, 0.5) * 1000) + 1)
        }
        return exit!
    }

    func signal(_ signal: Int32) { kill(process.pid, signal) }

    /// The bound address of the listener named `name`, from overseerd's log line.
    func listenerPort(_ name: String = "unknown", timeout: Double = 20) throws -> UInt16 {
        let line = try waitForLine(containing: "as \(name) (", timeout: timeout)
        // "overseerd: listening on 127.0.0.1:41234 as http (tcp, fd 3)"
        guard let address = line.split(separator: " ").dropFirst(3).first,
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

/// A scratch directory removed at the end of the test.
final class ScratchDirectory {
    let path: String
    init() {
        var template = Array("/tmp/overseerd-test-XXXXXX".utf8CString)
        path = String(cString: mkdtemp(&template)!)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

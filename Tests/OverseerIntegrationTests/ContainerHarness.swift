#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport

/// overseerd as PID 1 of a new PID namespace, as a container runs it
/// (`unshare --pid --fork --mount-proc`), with its log as JSON and a control
/// socket. `UNDER_TEST_OVERSEERD` names another overseerd to run (an older
/// build, to check that a test fails against it).
final class Container {
    static var overseerd: String { ProcessInfo.processInfo.environment["UNDER_TEST_OVERSEERD"] ?? Binaries.overseerd }

    /// Whether this machine can make a PID namespace (root, unshare). When it
    /// cannot, says so on one line and returns false; under CI=true that throws.
    static func available() throws -> Bool {
        var reason: String?
        if geteuid() != 0 {
            reason = "not root"
        } else if access("/usr/bin/unshare", X_OK) != 0 {
            reason = "no /usr/bin/unshare"
        }
        guard let reason else { return true }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            throw HarnessError("overseerd as PID 1 cannot be tested here (\(reason)); CI=true requires it")
        }
        print("skipping overseerd-as-PID-1 test: \(reason) (unshare --pid needs root)")
        return false
    }

    let scratch = ScratchDirectory()
    let run: RunningProcess
    var socket: String { scratch.file("control.sock") }
    /// overseerd's pid out here (1 inside the namespace).
    private(set) var pid: Int32 = 0

    /// Starts overseerd under unshare and waits until generation 1 is started
    /// (its `generation_started` event, or what `started` waits for).
    init(_ arguments: [String], environment: [String: String] = [:], asInit: Bool = true,
         started: ((RunningProcess) throws -> Void)? = nil) throws {
        let socket = scratch.file("control.sock")
        let prefix = asInit ? ["/usr/bin/unshare", "--pid", "--fork", "--mount-proc"] : []
        run = try RunningProcess(prefix + [Self.overseerd, "--control-socket", socket, "--log-format", "json"] + arguments,
                                 environment: environment)
        if let started { try started(run) } else { try event("generation_started", generation: 1) }
        pid = asInit ? try Self.onlyChild(of: run.pid) : run.pid
    }

    deinit {
        if run.exit == nil {
            kill(pid, SIGKILL)
            _ = try? run.waitForExit(timeout: 5)
        }
    }

    private static func onlyChild(of pid: Int32) throws -> Int32 {
        guard let child = Processes.children(of: pid).first else { throw HarnessError("unshare (pid \(pid)) has no child") }
        return child
    }

    /// The first log object with `name` (and `generation`), waiting for it.
    @discardableResult
    func event(_ name: String, generation: Int? = nil) throws -> [String: Any] {
        try StructuredLogTests.waitForEvent(run, name, generation: generation)
    }

    /// Log objects with `name` so far.
    func events(_ name: String) -> [[String: Any]] {
        StructuredLogTests.objects(run).filter { $0["event"] as? String == name }
    }

    /// An `overseerd` control command against this daemon.
    func control(_ arguments: [String]) throws -> (exit: ProcessExit, stdout: String, stderr: String) {
        let client = try RunningProcess([Self.overseerd] + arguments + ["--control-socket", socket])
        let exit = try client.waitForExit()
        return (exit, client.stdoutText, client.stderrText)
    }

    /// `status --json`, parsed.
    func status() throws -> [String: Any] {
        let (exit, text, error) = try control(["status", "--json"])
        guard exit == .exited(0), let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw HarnessError("status failed: \(exit) \(error)")
        }
        return object
    }

    /// The port of the first listener, from its `listening` event.
    func listenerPort() throws -> UInt16 {
        let message = try event("listening")["message"] as? String ?? ""
        // "listening on 127.0.0.1:41234 as unknown (tcp, fd 3)"
        guard let address = message.split(separator: " ").dropFirst(2).first,
              let port = address.split(separator: ":").last.flatMap({ UInt16($0) }) else {
            throw HarnessError("no port in \"\(message)\"")
        }
        return port
    }

    /// The processes under overseerd (its children, theirs, …), by pid out here.
    func descendants() -> [Int32] {
        var found: [Int32] = []
        var queue = [pid]
        while let next = queue.popLast() {
            let children = Self.allChildren(of: next)
            found += children
            queue += children
        }
        return found
    }

    /// overseerd's children in the zombie state.
    func zombies() -> Set<Int32> {
        Set(Self.allChildren(of: pid).filter { Self.state(of: $0) == "Z" })
    }

    /// The children of every thread of `pid`.
    static func allChildren(of pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { task in
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? "")
                .split(separator: " ").compactMap { Int32($0) }
        }
    }

    /// The state letter of /proc/PID/stat (R, S, Z, …), nil once the pid is gone.
    static func state(of pid: Int32) -> Character? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")"), stat.distance(from: close, to: stat.endIndex) > 2 else { return nil }
        return stat[stat.index(close, offsetBy: 2)]
    }

    /// The pid out here of the process that is `inner` inside the namespace (NSpid).
    func outerPID(of inner: Int32) -> Int32? {
        descendants().first { pid in
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") }) else { return false }
            return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).last.flatMap { Int32($0) } == inner
        }
    }
}

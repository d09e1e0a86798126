#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// A real systemd (Debian 12's 252) booted for one test by scripts/systemd-instance,
/// as PID 1 of private pid, mount, uts, ipc and cgroup namespaces, and driven with
/// the real systemctl. The network and the file systems are the host's.
///
/// The script powers the instance off when the socket on its fd 3 closes: when
/// `shutDown()` closes it, and also when this test process dies in any way.
final class SystemdInstance {
    static let projectRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path
    static let script = projectRoot + "/scripts/systemd-instance"

    /// Why systemd cannot be booted on this machine, or nil when it can.
    static let unavailable: String? = {
        guard let (exit, output, _) = try? RunningProcess([script, "check"]).waitForExitWithOutput() else {
            return "cannot run \(script)"
        }
        return exit == .exited(0) ? nil : output.trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    /// CI=true: a machine that cannot boot systemd fails the tests instead of skipping them.
    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Fails when systemd cannot be booted here (the suite is skipped unless CI=true).
    static func requireAvailable() throws {
        if let unavailable { throw HarnessError("CI=true, but systemd cannot be booted here: \(unavailable)") }
    }

    let directory = ScratchDirectory()
    private let keeper: RunningProcess
    private var lifeline: Int32
    /// The host pid of the instance's PID 1.
    let pid: Int32
    /// The host path of the instance's cgroup (its cgroup namespace's root).
    let cgroup: String
    let bootSeconds: Double

    /// Boots systemd with `units` (file name → text) in its /etc/systemd/system.
    init(units: [String: String]) throws {
        try Self.requireAvailable()
        let unitDirectory = directory.file("units")
        try FileManager.default.createDirectory(atPath: unitDirectory, withIntermediateDirectories: true)
        for (name, text) in units {
            let path = unitDirectory + "/" + name
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        }
        var ends: [Int32] = [-1, -1]
        // A socket pair rather than a pipe: it is created close-on-exec atomically
        // (pipe2 is not in Glibc's Swift module), so no other test's child inherits it.
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw HarnessError("socketpair: errno \(errno)")
        }
        do {
            keeper = try RunningProcess([Self.script, "run", directory.path], extraFDs: [ends[0]])
        } catch {
            close(ends[0])
            close(ends[1])
            throw error
        }
        close(ends[0])
        lifeline = ends[1]
        do {
            // "booted PID SECONDS CGROUP"
            let line = try keeper.waitForLine(containing: "booted ", in: .stdout, timeout: 30)
            let fields = line.split(separator: " ")
            guard fields.count == 4, let pid = Int32(fields[1]), let seconds = Double(fields[2]) else {
                throw HarnessError("unexpected line from \(Self.script): \(line)")
            }
            self.pid = pid
            self.bootSeconds = seconds
            self.cgroup = String(fields[3])
        } catch {
            close(lifeline)
            lifeline = -1
            _ = try? keeper.waitForExit(timeout: Self.shutdownLimit)
            throw error
        }
    }

    deinit {
        if lifeline >= 0 {
            close(lifeline)
            _ = try? keeper.waitForExit(timeout: Self.shutdownLimit)
        }
    }

    /// How long the keeper may take to power the instance off and check it.
    static let shutdownLimit: Double = 90

    /// Powers the instance off and checks that it left nothing behind: no process,
    /// cgroup, mount or PrivateTmp= directory.
    func shutDown() throws {
        guard lifeline >= 0 else { return }
        close(lifeline)
        lifeline = -1
        // The script's own bounds add up to about 21 s (systemctl 10 s, poweroff 5 s, cgroup 5 s);
        // under CI's load (the .deb's release build runs beside) it was seen to need more than 30.
        let exit = try keeper.waitForExit(timeout: Self.shutdownLimit)
        let report = keeper.stdoutText.split(separator: "\n").filter { !$0.hasPrefix("booted ") }.joined(separator: "\n")
        guard exit == .exited(0), report == "clean" else {
            throw HarnessError("the systemd instance was not cleaned up (\(exit)): \(report)\n\(keeper.stderrText)")
        }
        guard !Processes.isAlive(pid), !FileManager.default.fileExists(atPath: cgroup) else {
            throw HarnessError("the systemd instance's PID 1 (\(pid)) or its cgroup \(cgroup) is still there")
        }
    }

    // MARK: - Commands inside the instance

    /// Runs `arguments` in the instance's namespaces; returns how it ended and its output.
    @discardableResult
    func run(_ arguments: [String], timeout: Double = 60) throws -> (exit: ProcessExit, stdout: String, stderr: String) {
        let process = try RunningProcess([Self.script, "exec", directory.path] + arguments)
        let exit = try process.waitForExit(timeout: timeout)
        return (exit, process.stdoutText, process.stderrText)
    }

    /// `systemctl ARGUMENTS`; throws with its error output unless it exits 0.
    @discardableResult
    func systemctl(_ arguments: String...) throws -> String {
        let result = try run(["systemctl", "--no-pager", "--no-ask-password"] + arguments)
        guard result.exit == .exited(0) else {
            throw HarnessError("systemctl \(arguments.joined(separator: " ")): \(result.exit): \(result.stderr)")
        }
        return result.stdout
    }

    /// The unit's properties (`systemctl show -p …`).
    func properties(_ unit: String, _ names: [String]) throws -> [String: String] {
        let text = try systemctl("show", "-p", names.joined(separator: ","), unit)
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if let equals = line.firstIndex(of: "=") {
                values[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
        }
        return values
    }

    func property(_ unit: String, _ name: String) throws -> String {
        try properties(unit, [name])[name] ?? ""
    }

    /// Polls `names` of `unit` until `condition` holds for them; returns them.
    @discardableResult
    func waitFor(_ unit: String, _ names: [String], timeout: Double = 20, what: String,
                 until condition: ([String: String]) -> Bool) throws -> [String: String] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let values = try properties(unit, names)
            if condition(values) { return values }
            guard Date() < deadline else {
                throw HarnessError("\(unit): not \(what) within \(timeout)s: \(values)\n\(journal(unit))")
            }
            usleep(20_000)
        }
    }

    /// The unit's journal (systemd's own lines about it and its output).
    func journal(_ unit: String? = nil) -> String {
        let filter = unit.map { ["-u", $0] } ?? []
        return (try? run(["journalctl", "--no-pager", "-o", "cat"] + filter).stdout) ?? "(no journal)"
    }

    /// Waits until the unit's journal has a line containing `fragment`.
    @discardableResult
    func waitForJournalLine(_ unit: String, containing fragment: String, timeout: Double = 20) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let text = journal(unit)
            if let line = text.split(separator: "\n").first(where: { $0.contains(fragment) }) { return String(line) }
            guard Date() < deadline else { throw HarnessError("no line containing \"\(fragment)\" in the journal of \(unit):\n\(text)") }
            usleep(50_000)
        }
    }

    // MARK: - Processes, seen from the host

    /// The host pids in the unit's cgroup (and its sub-cgroups).
    func processes(of unit: String, slice: String = "system.slice") -> [Int32] {
        let top = cgroup + "/" + slice + "/" + unit
        var pids: [Int32] = []
        let directories = [top] + ((FileManager.default.subpaths(atPath: top) ?? []).map { top + "/" + $0 })
        for directory in directories {
            let text = (try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8)) ?? ""
            pids += text.split(separator: "\n").compactMap { Int32($0) }
        }
        return pids
    }

    /// Every host pid in the instance's cgroup tree.
    func allProcesses() -> [Int32] {
        processes(of: "", slice: "")
    }

    /// The host pid of the process the instance knows as `innerPID`, among `candidates`.
    func hostPID(of innerPID: Int32, among candidates: [Int32]) -> Int32? {
        candidates.first { HostProcess.innermostPID($0) == innerPID }
    }

    /// The host pid of the unit's main process (MainPID is the instance's numbering).
    func mainProcess(of unit: String) throws -> Int32 {
        let inner = try Int32(property(unit, "MainPID")) ?? 0
        guard inner > 0, let pid = hostPID(of: inner, among: processes(of: unit)) else {
            throw HarnessError("\(unit) has no main process (MainPID=\(inner))")
        }
        return pid
    }

    /// `path` inside the instance (its /run, its mounts), seen from the host.
    func insidePath(_ path: String) -> String {
        "/proc/\(pid)/root" + path
    }
}

/// Facts about host processes from /proc.
enum HostProcess {
    /// The pid in the innermost pid namespace of host process `pid`.
    static func innermostPID(_ pid: Int32) -> Int32? {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") }) else { return nil }
        return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last.flatMap { Int32($0) }
    }

    static func parent(_ pid: Int32) -> Int32? {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") }) else { return nil }
        return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last.flatMap { Int32($0) }
    }

    /// The executable's path as the process sees it.
    static func executable(_ pid: Int32) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
    }

    static func commandName(_ pid: Int32) -> String {
        ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Boots systemd with `units`, runs `body`, and always powers it off and checks
/// that nothing was left behind, also when `body` throws.
func withSystemd(_ units: [String: String], _ body: (SystemdInstance) throws -> Void) throws {
    let instance = try SystemdInstance(units: units)
    var failure: Error?
    do {
        try body(instance)
    } catch {
        failure = error
        Issue.record("the instance's journal:\n\(instance.journal())")
    }
    do {
        try instance.shutDown()
    } catch {
        if failure == nil { throw error }
        Issue.record(error)
    }
    if let failure { throw failure }
}

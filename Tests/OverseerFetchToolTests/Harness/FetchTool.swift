import Foundation
import OverseerProtocol

/// Runs the built overseerd-fetch the way the daemon does: a fresh file on fd 3, one report line on stdout.
enum FetchTool {
    /// The overseerd-fetch beside the test bundle: the directory of /proc/self/exe, above any `*.xctest`.
    static let path: String = {
        var url = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0])
        url.deleteLastPathComponent()
        while url.pathComponents.contains(where: { $0.hasSuffix(".xctest") }) { url.deleteLastPathComponent() }
        return url.appendingPathComponent("overseerd-fetch").path
    }()

    /// The test process's environment without proxies or credentials, plus `extra`.
    static func environment(_ extra: [String: String] = [:]) -> [String] {
        let dropped = ["http_proxy", "https_proxy", "all_proxy", "no_proxy", "GITHUB_TOKEN"]
        var variables = ProcessInfo.processInfo.environment.filter { name, _ in
            !dropped.contains(name.lowercased()) && !dropped.contains(name) && !name.hasPrefix("AWS_")
        }
        variables.merge(extra) { $1 }
        return variables.map { "\($0)=\($1)" }
    }

    /// What one run did.
    struct Run {
        var outcome: Subprocess.Outcome
        var report: FetchReport?
        /// The bytes left in the output file.
        var written: Data

        var exitStatus: Int32? { outcome.exitStatus }
        /// Everything the test needs to see when an expectation fails.
        var summary: String { "exit \(outcome.exitStatus.map(String.init) ?? "signal \(outcome.signal ?? 0)"): \(outcome.stdout) \(outcome.stderr)" }
    }

    /// Runs overseerd-fetch with `arguments` and a new empty file on fd 3.
    /// `wrapper` runs first, with overseerd-fetch's path and arguments after it (e.g. `/usr/bin/time`).
    static func run(_ arguments: [String], environment extra: [String: String] = [:], timeout: Double = 30,
                    wrapper: [String] = []) throws -> Run {
        let directory = try TemporaryDirectory()
        let outputPath = directory.path + "/staged"
        let fd = open(outputPath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Subprocess.Failure(description: "cannot create \(outputPath)") }
        defer { close(fd) }
        let command = wrapper + [path] + arguments
        let child = try Subprocess(path: command[0], arguments: Array(command.dropFirst()),
                                   environment: environment(extra), extraFDs: [3: fd])
        let outcome = child.finish(timeout: timeout)
        let lines = outcome.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let report = lines.count == 2 && lines[1].isEmpty ? try? FetchReport(parsing: String(lines[0])) : nil
        let written = try Data(contentsOf: URL(fileURLWithPath: outputPath))
        return Run(outcome: outcome, report: report, written: written)
    }
}

/// A directory under the system temporary directory, removed when this value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/overseerd-fetch-test.XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw Subprocess.Failure(description: "mkdtemp failed") }
        path = String(cString: made)
    }

    /// Keeps the directory: the caller takes over removing it.
    func keep() -> String {
        kept = true
        return path
    }

    private var kept = false

    deinit {
        if !kept { try? FileManager.default.removeItem(atPath: path) }
    }
}

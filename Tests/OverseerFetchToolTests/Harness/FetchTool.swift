import Foundation
import OverseerCore
import OverseerProtocol
import OverseerTestSupport

/// Runs the built overseerd-fetch the way the daemon does: a fresh file on fd 3, one report line on stdout.
enum FetchTool {
    /// The overseerd-fetch beside the test runner.
    static let path = BuiltProducts.path("overseerd-fetch")

    /// The names in the test process's environment that overseerd-fetch must not see: proxies and credentials.
    static let hiddenVariables: [String] = {
        let dropped = ["http_proxy", "https_proxy", "all_proxy", "no_proxy", "GITHUB_TOKEN"]
        return ProcessInfo.processInfo.environment.keys.filter { name in
            dropped.contains(name.lowercased()) || dropped.contains(name) || name.hasPrefix("AWS_")
        }
    }()

    /// What one run did.
    struct Run {
        var exit: ProcessExit
        var stdout: String
        var stderr: String
        var report: FetchReport?
        /// The bytes left in the output file.
        var written: Data

        /// The exit status, or nil when a signal ended it.
        var exitStatus: Int32? {
            if case let .exited(code) = exit { code } else { nil }
        }
        /// Everything the test needs to see when an expectation fails.
        var summary: String { "exit \(exit): \(stdout) \(stderr)" }
    }

    /// Starts overseerd-fetch with `arguments`, `output` on fd 3, and `environment` added to
    /// the test process's own less `hiddenVariables`.
    /// `wrapper` runs first, with overseerd-fetch's path and arguments after it (e.g. `/usr/bin/time`).
    static func start(_ arguments: [String], output: Int32, environment extra: [String: String] = [:],
                      wrapper: [String] = []) throws -> RunningProcess {
        try RunningProcess(wrapper + [path] + arguments, environment: extra, removing: hiddenVariables,
                           extraFDs: [output])
    }

    /// Runs overseerd-fetch with `arguments` and a new empty file on fd 3.
    static func run(_ arguments: [String], environment extra: [String: String] = [:], timeout: Double = 30,
                    wrapper: [String] = []) throws -> Run {
        let directory = try TemporaryDirectory()
        let outputPath = directory.path + "/staged"
        let fd = open(outputPath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HarnessError("cannot create \(outputPath)") }
        defer { close(fd) }
        let child = try start(arguments, output: fd, environment: extra, wrapper: wrapper)
        let exit = try child.waitForExit(timeout: timeout)
        let lines = child.stdoutText.split(separator: "\n", omittingEmptySubsequences: false)
        let report = lines.count == 2 && lines[1].isEmpty ? try? FetchReport(parsing: String(lines[0])) : nil
        let written = try Data(contentsOf: URL(fileURLWithPath: outputPath))
        return Run(exit: exit, stdout: child.stdoutText, stderr: child.stderrText, report: report, written: written)
    }
}

/// A directory under the system temporary directory, removed when this value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/overseerd-fetch-test.XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw HarnessError("mkdtemp failed") }
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

import OverseerCore
import OverseerSystem
import SystemPackage

/// A short-lived process overseerd runs for itself: overseerd-fetch, a start
/// check, a pre-upgrade command.
struct HelperRequest {
    var label: String
    /// argv; argv[0] is the path.
    var arguments: [String]
    var environment: [String]
    /// Becomes fd 3 in the helper.
    var extraFD: Int32?
    var user: (uid: UInt32, gid: UInt32)?
    var timeout: Duration
}

/// How a helper ended.
struct HelperResult {
    let exit: ProcessExit
    /// Its stdout, at most `HelperRunner.outputLimit` bytes.
    let output: String
    /// Killed at its deadline.
    let timedOut: Bool
}

/// Starts helpers for the upgrade driver and the re-exec check.
protocol HelperStarting: AnyObject {
    /// Starts `request`; `completion` runs on the loop once the helper and
    /// everything it started in its process group are gone.
    func start(_ request: HelperRequest, completion: @escaping (HelperResult) -> Void) throws
    /// Helpers running now.
    var running: Int { get }
}

/// One running helper: its process (leading its own process group), its stdout
/// pipe and its deadline. Owned by `HelperRunner`; its handlers hold it weakly.
final class HelperProcess {
    let id: Int
    let process: ChildProcess
    let label: String
    let stdout: FileDescriptor
    var output: [UInt8] = []
    var timedOut = false
    var watches: [WatchToken] = []
    var deadline: DeadlineToken?
    let completion: (HelperResult) -> Void

    init(id: Int, process: ChildProcess, label: String, stdout: FileDescriptor, completion: @escaping (HelperResult) -> Void) {
        self.id = id
        self.process = process
        self.label = label
        self.stdout = stdout
        self.completion = completion
    }

    /// Takes what is readable on stdout, keeping at most `limit` bytes.
    func readOutput(limit: Int) {
        var buffer = [UInt8](repeating: 0, count: 8192)
        while case let .bytes(count)? = try? Posix.read(stdout, into: &buffer) {
            if output.count < limit { output += buffer.prefix(min(count, limit - output.count)) }
        }
    }
}

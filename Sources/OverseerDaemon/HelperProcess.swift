#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import OverseerCore
import OverseerSystem

/// A short-lived process overseerd runs for itself (overseerd-fetch, a start
/// check, a pre-upgrade command): its stdout is collected (at most 64 KiB),
/// it is killed at its deadline, and `completion` gets its exit and output.
final class HelperProcess {
    static let outputLimit = 65536

    let id: Int
    let process: ChildProcess
    let label: String
    private let stdoutFD: Int32
    private var output: [UInt8] = []
    private var tokens: [(fd: Int32, token: UInt64)] = []
    private let completion: (ProcessExit, String) -> Void
    private(set) var timedOut = false

    private init(id: Int, process: ChildProcess, label: String, stdoutFD: Int32, completion: @escaping (ProcessExit, String) -> Void) {
        self.id = id
        self.process = process
        self.label = label
        self.stdoutFD = stdoutFD
        self.completion = completion
    }

    /// Starts `arguments` (argv[0] is the path) with `environment`; `extraFD`, if
    /// given, becomes fd 3. stderr goes to overseerd's stderr.
    @discardableResult
    static func start(on host: Supervisor, label: String, arguments: [String], environment: [String], extraFD: Int32? = nil,
                      user: (uid: UInt32, gid: UInt32)? = nil, timeout: Duration,
                      completion: @escaping (ProcessExit, String) -> Void) throws -> HelperProcess {
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { throw SystemError.last("pipe") }
        _ = fcntl(pipeFDs[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeFDs[1], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeFDs[0], F_SETFL, O_NONBLOCK)
        let devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(devnull); close(pipeFDs[1]) }
        var request = ChildProcess.Request(path: arguments[0], arguments: arguments, environment: environment,
                                           fdMap: [devnull, pipeFDs[1], -1] + (extraFD.map { [$0] } ?? []),
                                           newProcessGroup: true, parentDeathSignal: SIGKILL)
        request.user = user
        request.noNewPrivileges = user != nil
        let process: ChildProcess
        do {
            process = try ChildProcess.spawn(request)
        } catch {
            close(pipeFDs[0])
            throw error
        }
        let id = host.nextHelperID
        host.nextHelperID += 1
        let helper = HelperProcess(id: id, process: process, label: label, stdoutFD: pipeFDs[0], completion: completion)
        host.helpers[id] = helper
        do {
            helper.tokens.append((pipeFDs[0], try host.watch(pipeFDs[0]) { [unowned helper] in helper.readOutput() }))
            if let pidfd = process.pidfd {
                helper.tokens.append((pidfd.rawValue, try host.watch(pidfd.rawValue) { [unowned helper, unowned host] in
                    helper.reapIfDone(host)
                }))
            }
        } catch {
            host.logger.error("cannot watch \(label): \(error)")
        }
        host.schedule(.helperTimeout(id), after: timeout) { [unowned helper, unowned host] in
            host.logger.warning("\(label) (pid \(process.pid)) still running after \(timeout.shortDescription); killing it")
            helper.timedOut = true
            helper.process.signal(SIGKILL)
            // Without a pidfd, SIGCHLD tells us; with one, the pidfd does.
            helper.reapIfDone(host)
        }
        return helper
    }

    func readOutput() {
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = read(stdoutFD, &buffer, buffer.count)
            guard count > 0 else { return }
            if output.count < Self.outputLimit {
                output += buffer.prefix(min(count, Self.outputLimit - output.count))
            }
        }
    }

    /// Reaps the process if it has exited, then reports.
    func reapIfDone(_ host: Supervisor) {
        guard let exit = process.reap() else { return }
        readOutput()
        for (fd, token) in tokens { host.unwatch(fd, token: token) }
        close(stdoutFD)
        process.release()
        host.cancel(.helperTimeout(id))
        host.helpers[id] = nil
        completion(exit, String(decoding: output, as: UTF8.self))
    }
}

import Glibc
import Logging
import OverseerCore
import OverseerSystem
import SystemPackage

/// Runs helpers: each in a process group of its own, stdout collected, stderr
/// to overseerd's, killed at its deadline. When a helper ends, passed or
/// failed, whatever it left in its process group is killed too (a check that
/// ran `sleep 3600 &` leaves nothing behind).
final class HelperRunner: HelperStarting {
    static let outputLimit = 65536

    private let loop: EventScheduling
    private let logger: Logger
    private var helpers: [Int: HelperProcess] = [:]
    private var nextID = 1

    init(loop: EventScheduling, logger: Logger) {
        self.loop = loop
        self.logger = logger
    }

    var running: Int { helpers.count }

    func start(_ request: HelperRequest, completion: @escaping (HelperResult) -> Void) throws {
        let pipe = try Posix.pipe()
        defer { Posix.close(pipe.write) }
        let devnull = try Posix.openNullDevice()
        defer { Posix.close(devnull) }
        var spawn = ChildProcess.Request(path: request.arguments[0], arguments: request.arguments, environment: request.environment,
                                         fdMap: [devnull.rawValue, pipe.write.rawValue, -1] + (request.extraFD.map { [$0] } ?? []),
                                         newProcessGroup: true, parentDeathSignal: SIGKILL)
        spawn.user = request.user
        spawn.noNewPrivileges = request.user != nil
        let process: ChildProcess
        do {
            process = try ChildProcess.spawn(spawn)
        } catch {
            Posix.close(pipe.read)
            throw error
        }
        let id = nextID
        nextID += 1
        let helper = HelperProcess(id: id, process: process, label: request.label, stdout: pipe.read, completion: completion)
        helpers[id] = helper
        do {
            helper.watches.append(try loop.watch(pipe.read) { [weak helper] in helper?.readOutput(limit: Self.outputLimit) })
            if let pidfd = process.pidfd {
                helper.watches.append(try loop.watch(pidfd) { [weak self, weak helper] in
                    if let helper { self?.finishIfExited(helper) }
                })
            }
        } catch {
            logger.log(.error, .internalError, "cannot watch \(request.label): \(error)")
        }
        let timeout = request.timeout
        helper.deadline = loop.schedule(after: timeout) { [weak self, weak helper] in
            guard let self, let helper else { return }
            logger.log(.warning, .helperTimeout, "\(helper.label) (pid \(helper.process.pid)) still running after \(timeout.shortDescription); killing it")
            helper.timedOut = true
            helper.process.signalProcessGroup(SIGKILL)
            helper.process.signal(SIGKILL)
            // Without a pidfd, SIGCHLD tells us; with one, the pidfd does.
            finishIfExited(helper)
        }
    }

    /// On SIGCHLD (kernels without pidfds): finishes every helper that exited.
    func reapExited() {
        for helper in Array(helpers.values) { finishIfExited(helper) }
    }

    /// Whether `pid` is a helper's: its status is the helper's completion's, never the orphan reaper's.
    func owns(_ pid: Int32) -> Bool {
        helpers.values.contains { $0.process.pid == pid }
    }

    /// Kills every helper and its group (overseerd is exiting).
    func killAll() {
        for helper in helpers.values {
            helper.process.signalProcessGroup(SIGKILL)
            helper.process.signal(SIGKILL)
        }
    }

    private func finishIfExited(_ helper: HelperProcess) {
        guard helpers[helper.id] === helper, helper.process.hasExited else { return }
        // Still a zombie, so its pid is still the group's id: nobody else's.
        helper.process.signalProcessGroup(SIGKILL)
        guard let exit = helper.process.reap() else { return }
        helper.readOutput(limit: Self.outputLimit)
        for watch in helper.watches { loop.unwatch(watch) }
        helper.watches = []
        Posix.close(helper.stdout)
        helper.process.release()
        loop.cancel(helper.deadline)
        helpers[helper.id] = nil
        helper.completion(HelperResult(exit: exit, output: String(decoding: helper.output, as: UTF8.self), timedOut: helper.timedOut))
    }
}

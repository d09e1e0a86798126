import Glibc
import COverseerShims
import OverseerCore
import SystemPackage

/// A child started by the C shim: fork, fd layout, signal reset, exec.
public struct ChildProcess: Sendable {
    public let pid: Int32
    /// A pidfd following the child (nil on kernels before 5.3): signals sent
    /// through it cannot hit a recycled pid, and it becomes readable when the child exits.
    public let pidfd: FileDescriptor?

    /// A child started by an earlier image of this process (see `HandoverState`).
    public init(adopting pid: Int32, pidfd: Int32?) {
        self.pid = pid
        self.pidfd = pidfd.map { FileDescriptor(rawValue: $0) }
    }

    /// What to start and how.
    public struct Request: Sendable {
        /// An executable path, already resolved.
        public var path: String
        /// argv, including argv[0].
        public var arguments: [String]
        /// `NAME=VALUE` entries. When `writesListenPID` is set the last entry
        /// is `LISTEN_PID=` followed by a placeholder the child fills with its own pid.
        public var environment: [String]
        public var writesListenPID: Bool
        /// fdMap[i] becomes fd i in the child; -1 keeps fd i as inherited (0, 1, 2 only).
        public var fdMap: [Int32]
        public var newProcessGroup: Bool
        public var parentDeathSignal: Int32?
        public var workingDirectory: String?
        /// Run as this user and group (supplementary groups cleared).
        public var user: (uid: UInt32, gid: UInt32)?
        /// PR_SET_NO_NEW_PRIVS before exec.
        public var noNewPrivileges = false

        public init(path: String, arguments: [String], environment: [String], writesListenPID: Bool = false,
                    fdMap: [Int32] = [-1, -1, -1], newProcessGroup: Bool = false,
                    parentDeathSignal: Int32? = nil, workingDirectory: String? = nil) {
            self.path = path
            self.arguments = arguments
            self.environment = environment
            self.writesListenPID = writesListenPID
            self.fdMap = fdMap
            self.newProcessGroup = newProcessGroup
            self.parentDeathSignal = parentDeathSignal
            self.workingDirectory = workingDirectory
        }
    }

    /// Why the child could not be started.
    public struct SpawnError: Error, Sendable, CustomStringConvertible {
        public let stage: String
        public let errno: Errno
        public let path: String

        /// 127 when the program is missing, 126 when it cannot be executed, 71 otherwise.
        public var exitCode: Int32 {
            guard stage == "exec" else { return OverseerExitCode.systemFailure }
            switch errno {
            case .noSuchFileOrDirectory, .notDirectory: return OverseerExitCode.notFound
            default: return OverseerExitCode.cannotExecute
            }
        }

        public var description: String {
            let reason = errno.description.prefix(1).lowercased() + errno.description.dropFirst()
            switch stage {
            case "exec":
                let hint = errno == .execFormatError ? " — is it a script without a #! line, or built for another machine?" : ""
                return "cannot run \(path): exec failed: \(reason)\(hint)"
            case "fork": return "cannot start \(path): fork failed: \(reason) — the process or memory limit is reached"
            case "fds": return "cannot start \(path): setting up its fds failed: \(reason) — raise the fd limit (ulimit -n)"
            default: return "cannot start \(path): \(stage) failed: \(reason)"
            }
        }
    }

    /// Starts the child. Returns once it has exec'd (or throws if it could not).
    public static func spawn(_ request: Request) throws(SpawnError) -> ChildProcess {
        var cStrings: [UnsafeMutablePointer<CChar>?] = []
        defer { for pointer in cStrings { free(pointer) } }
        let argv: [UnsafeMutablePointer<CChar>?] = request.arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = request.environment.map { strdup($0) } + [nil]
        cStrings = argv + envp
        var ownPIDDigits: UnsafeMutablePointer<CChar>?
        if request.writesListenPID, let last = envp.dropLast().last, let entry = last {
            // Points just past "LISTEN_PID=", into the 20-character placeholder.
            ownPIDDigits = strchr(entry, Int32(UInt8(ascii: "="))).map { $0 + 1 }
        }
        var error: Int32 = 0
        var stage: Int32 = 0
        let pid: pid_t = request.path.withCString { path in
            request.workingDirectory.withOptionalCString { directory in
                argv.withUnsafeBufferPointer { argvBuffer in
                    envp.withUnsafeBufferPointer { envpBuffer in
                        request.fdMap.withUnsafeBufferPointer { fdBuffer in
                            var spawnRequest = overseer_spawn_request(
                                path: path,
                                argv: argvBuffer.baseAddress,
                                envp: envpBuffer.baseAddress,
                                fd_map: fdBuffer.baseAddress,
                                fd_count: Int32(fdBuffer.count),
                                own_pid_digits: ownPIDDigits,
                                new_process_group: request.newProcessGroup ? 1 : 0,
                                parent_death_signal: request.parentDeathSignal ?? 0,
                                working_directory: directory,
                                uid: request.user.map { Int32(bitPattern: $0.uid) } ?? -1,
                                gid: request.user.map { Int32(bitPattern: $0.gid) } ?? -1,
                                no_new_privileges: request.noNewPrivileges ? 1 : 0)
                            return overseer_spawn(&spawnRequest, &error, &stage)
                        }
                    }
                }
            }
        }
        guard pid > 0 else {
            let stageName = switch Int(stage) {
            case Int(OVERSEER_SPAWN_STAGE_PIPE): "pipe"
            case Int(OVERSEER_SPAWN_STAGE_FORK): "fork"
            case Int(OVERSEER_SPAWN_STAGE_FDS): "fds"
            case Int(OVERSEER_SPAWN_STAGE_SIGNALS): "signal reset"
            case Int(OVERSEER_SPAWN_STAGE_CHDIR): "chdir"
            case Int(OVERSEER_SPAWN_STAGE_EXEC): "exec"
            default: "setup"
            }
            throw SpawnError(stage: stageName, errno: Errno(rawValue: error), path: request.path)
        }
        let pidfd = overseer_pidfd_open(pid)
        if pidfd >= 0 { try? Posix.setCloseOnExec(pidfd) }
        return ChildProcess(adopting: pid, pidfd: pidfd >= 0 ? pidfd : nil)
    }

    /// Sends `signal`; a child that is already gone is not an error.
    public func signal(_ signal: Int32) {
        if let pidfd {
            if overseer_pidfd_send_signal(pidfd.rawValue, signal) == 0 || Posix.errno == ESRCH { return }
        }
        _ = kill(pid, signal)
    }

    /// A process this one did not start (one a generation left behind), held by
    /// pidfd; nil when it is already gone, so that no later signal can reach
    /// whoever got its pid. Only a kernel without pidfds leaves the plain pid.
    public static func adoptingIfAlive(_ pid: Int32) -> ChildProcess? {
        let fd = overseer_pidfd_open(pid)
        if fd >= 0 {
            try? Posix.setCloseOnExec(fd)
            return ChildProcess(adopting: pid, pidfd: fd)
        }
        return Posix.errno == ESRCH ? nil : ChildProcess(adopting: pid, pidfd: nil)
    }

    /// Whether the process still exists (it may be a zombie of someone else's).
    public var isAlive: Bool {
        if let pidfd { return overseer_pidfd_send_signal(pidfd.rawValue, 0) == 0 }
        return kill(pid, 0) == 0
    }

    /// Whether the child has exited, without reaping it: until it is reaped its
    /// pid stays taken, and with it the id of its process group.
    public var hasExited: Bool { overseer_has_exited(pidfd?.rawValue ?? -1, pid) == 1 }

    /// Sends `signal` to the child's process group, when the child leads one of
    /// its own (it was spawned with `newProcessGroup`); false when it does not
    /// or nothing was there. Call it before the child is reaped.
    @discardableResult
    public func signalProcessGroup(_ signal: Int32) -> Bool {
        guard getpgid(pid) == pid else { return false }
        return kill(-pid, signal) == 0
    }

    /// Reaps the child if it has exited; nil while it runs.
    public func reap() -> ProcessExit? {
        var code: Int32 = -1
        var signal: Int32 = -1
        let rc = overseer_reap(pidfd?.rawValue ?? -1, pid, &code, &signal)
        guard rc == 1 else { return nil }
        return code >= 0 ? .exited(code) : .killed(signal: signal)
    }

    /// Closes the pidfd (after reaping).
    public func release() {
        if let pidfd { Posix.close(pidfd.rawValue) }
    }
}

extension Optional where Wrapped == String {
    func withOptionalCString<R>(_ body: (UnsafePointer<CChar>?) -> R) -> R {
        switch self {
        case let .some(string): string.withCString { body($0) }
        case .none: body(nil)
        }
    }
}

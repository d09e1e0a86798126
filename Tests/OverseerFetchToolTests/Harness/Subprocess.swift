import Glibc

/// pipe2(2): Glibc's module map hides it (a GNU extension), and plain pipe()+FD_CLOEXEC would
/// race with the other tests' spawns, leaking pipe ends into their children.
@_silgen_name("pipe2")
private func systemPipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32

/// A child process started with posix_spawn, with chosen fds in chosen places (Foundation's
/// Process cannot put a file on fd 3), its stdout and stderr on pipes, and wait4's rusage.
final class Subprocess: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// How a child ended and what it printed.
    struct Outcome {
        /// The exit status, or nil when a signal ended it.
        var exitStatus: Int32?
        var signal: Int32?
        var stdout: String
        var stderr: String
        /// Peak resident set size (ru_maxrss), in KiB.
        var maxRSSKilobytes: Int
    }

    let pid: pid_t
    private let stdoutFD: Int32
    private let stderrFD: Int32
    /// The write end of the child's stdin pipe, when it has one: closing it tells the child to stop.
    private var stdinFD: Int32?
    private var stdoutBuffer: [UInt8] = []
    private var stdoutClosed = false
    private var stderrBuffer: [UInt8] = []
    private var stderrClosed = false

    /// Starts `path`; `extraFDs` maps a child fd number to a parent fd to place there.
    init(path: String, arguments: [String], environment: [String], extraFDs: [Int32: Int32] = [:],
         stdinPipe: Bool = false) throws {
        var stdoutPipe: [Int32] = [0, 0], stderrPipe: [Int32] = [0, 0], stdinPipeFDs: [Int32] = [-1, -1]
        guard systemPipe2(&stdoutPipe, O_CLOEXEC) == 0, systemPipe2(&stderrPipe, O_CLOEXEC) == 0 else {
            throw Failure(description: "pipe2: \(String(cString: strerror(errno)))")
        }
        var stdinSource: Int32
        if stdinPipe {
            guard systemPipe2(&stdinPipeFDs, O_CLOEXEC) == 0 else { throw Failure(description: "pipe2 failed") }
            stdinSource = stdinPipeFDs[0]
        } else {
            stdinSource = open("/dev/null", O_RDONLY | O_CLOEXEC)
        }
        var mapping: [Int32: Int32] = [0: stdinSource, 1: stdoutPipe[1], 2: stderrPipe[1]]
        for (target, source) in extraFDs { mapping[target] = source }
        // Copy every source above the targets first, so that no dup2 overwrites a later source.
        var highCopies: [Int32] = []
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        for (target, source) in mapping.sorted(by: { $0.key < $1.key }) {
            let high = fcntl(source, F_DUPFD_CLOEXEC, 64)
            highCopies.append(high)
            posix_spawn_file_actions_adddup2(&actions, high, target)
        }
        // Swift's pool threads block signals; the child must start with none blocked or ignored.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var emptySet = sigset_t(), allSet = sigset_t()
        sigemptyset(&emptySet)
        sigfillset(&allSet)
        posix_spawnattr_setsigmask(&attributes, &emptySet)
        posix_spawnattr_setsigdefault(&attributes, &allSet)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
            highCopies.forEach { close($0) }
            close(stdoutPipe[1])
            close(stderrPipe[1])
            close(stdinSource)
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw Failure(description: "posix_spawn \(path): \(String(cString: strerror(result)))")
        }
        self.pid = pid
        stdoutFD = stdoutPipe[0]
        stderrFD = stderrPipe[0]
        stdinFD = stdinPipe ? stdinPipeFDs[1] : nil
    }

    deinit {
        if let stdinFD { close(stdinFD) }
        close(stdoutFD)
        close(stderrFD)
    }

    /// Reads until stdout has a whole first line, or the deadline passes.
    func readLine(timeout seconds: Double) -> String? {
        let deadline = Self.now() + seconds
        while true {
            if let newline = stdoutBuffer.firstIndex(of: 0x0a) {
                let line = String(decoding: stdoutBuffer[..<newline], as: UTF8.self)
                stdoutBuffer.removeSubrange(...newline)
                return line
            }
            if stdoutClosed || Self.now() > deadline { return nil }
            pump(until: deadline)
        }
    }

    /// Reads stdout and stderr to their end and reaps the child; kills it at the deadline.
    func finish(timeout seconds: Double) -> Outcome {
        let deadline = Self.now() + seconds
        while !(stdoutClosed && stderrClosed) {
            if Self.now() > deadline {
                kill(pid, SIGKILL)
                break
            }
            pump(until: deadline)
        }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        return Outcome(exitStatus: signal == 0 ? (status >> 8) & 0xff : nil, signal: signal == 0 ? nil : signal,
                       stdout: String(decoding: stdoutBuffer, as: UTF8.self),
                       stderr: String(decoding: stderrBuffer, as: UTF8.self),
                       maxRSSKilobytes: usage.ru_maxrss)
    }

    /// Closes the child's stdin (the test servers exit on that) and reaps it, killing it after 5 s.
    func stop() {
        if let stdinFD { close(stdinFD) }
        stdinFD = nil
        _ = finish(timeout: 5)
    }

    private func pump(until deadline: Double) {
        var fds: [pollfd] = []
        if !stdoutClosed { fds.append(pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)) }
        if !stderrClosed { fds.append(pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)) }
        let milliseconds = Int32(max(1, min(1000, (deadline - Self.now()) * 1000)))
        guard poll(&fds, nfds_t(fds.count), milliseconds) > 0 else { return }
        var chunk = [UInt8](repeating: 0, count: 65536)
        for entry in fds where entry.revents != 0 {
            let count = read(entry.fd, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            if entry.fd == stdoutFD {
                if count <= 0 { stdoutClosed = true } else { stdoutBuffer += chunk[..<count] }
            } else {
                if count <= 0 { stderrClosed = true } else { stderrBuffer += chunk[..<count] }
            }
        }
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}

#if canImport(Glibc)
import Glibc
#endif
import OverseerCore
import OverseerSystem

// The one way the tests start a process: OverseerSystem's spawn shim (the one
// overseerd starts its children with), stdout and stderr on pipes read here,
// the exit learnt through the child's pidfd.
//
// Not Foundation.Process: on Linux its waitUntilExit() spins a run loop and
// learns of the exit through a socket pair the child inherits (and any process
// forked meanwhile by another test may inherit too: swift-corelibs-foundation
// issue 4795). With two full runs side by side here, a waitUntilExit() in
// MinisignTests never returned (ten minutes, then timeout).
//
// Every fd made here is close-on-exec from the moment it exists: the pipes come
// from pipe2(O_CLOEXEC) (Posix.pipe), /dev/null is opened with O_CLOEXEC. The
// tests run side by side on several threads, and pipe() followed by
// fcntl(FD_CLOEXEC) leaves a moment in which another test's fork copies the new
// pipe end without the flag. Whatever that fork starts then holds the pipe open:
// the reader here sees no end of file when its own child has exited, and a server
// told to stop by closing its stdin keeps running. The spawn shim marks the fds
// it does not hand out close-on-exec in its own child, which shortens the leak to
// that child's fork-to-exec; any other fork in the process (popen, posix_spawn, a
// library's) keeps the end for as long as its child lives. Creating the fds
// close-on-exec does not depend on how every other spawner behaves.
//
// No rusage: until exec the child is a fork of the test process, and exec records
// that copy's peak RSS as the child's, so ru_maxrss says nothing about the program
// (MemoryTests measure with GNU time instead).

/// A failure of the harness itself: a process that did not start, a line that did not come.
public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A running program with its stdout and stderr captured; killed (SIGKILL) when
/// this value goes away before it has exited.
///
/// `@unchecked Sendable`: a test drives one from one thread at a time.
public final class RunningProcess: @unchecked Sendable {
    public let process: ChildProcess
    private var stdoutFD: Int32
    private var stderrFD: Int32
    /// The write end of the child's stdin, when it was started with `stdinPipe`.
    private var stdinFD: Int32?
    /// The read end of a stderr pipe nobody reads (`unreadStderr`).
    private var unreadStderrFD: Int32?
    public private(set) var stdoutText = ""
    public private(set) var stderrText = ""
    /// How the process ended; nil while it runs.
    public private(set) var exit: ProcessExit?
    /// How much of each stream `nextLine` has returned, in UTF-8 bytes.
    private var consumed: [Stream: Int] = [:]
    /// overseerd's JSON lines parsed so far (RunningProcess+Events), and how much
    /// of stderr they cover, in UTF-8 bytes: each line is parsed once.
    private var parsed: [LoggedEvent] = []
    private var parsedBytes = 0

    public var pid: Int32 { process.pid }

    public enum Stream: Hashable, Sendable { case stdout, stderr }

    /// Starts `arguments[0]` (a path) with this process's environment, less the
    /// names in `removing` (and the test runner's own LISTEN_* and NOTIFY_SOCKET),
    /// plus `environment`. `extraFDs[i]` becomes fd 3 + i in the child. Its stdin
    /// is /dev/null, or with `stdinPipe` a pipe that `closeStdin()` closes.
    /// With `unreadStderr` its stderr is a pipe kept open here and never read
    /// (`stderrText` stays empty, `unreadStderrIsFull` says whether it is full).
    /// The child leads a process group of its own.
    public init(_ arguments: [String], environment: [String: String] = [:], removing: [String] = [],
                workingDirectory: String? = nil, extraFDs: [Int32] = [], stdinPipe: Bool = false,
                unreadStderr: Bool = false) throws {
        // Closed on return: the child's ends always, this side's too when it did not start.
        var opened: [Int32] = []
        defer { for fd in opened { Posix.close(fd) } }
        let stdout = try Posix.pipe()
        opened += [stdout.read.rawValue, stdout.write.rawValue]
        let stderr = try Posix.pipe()
        opened += [stderr.read.rawValue, stderr.write.rawValue]
        let stdin = stdinPipe ? try Posix.pipe() : nil
        if let stdin {
            opened += [stdin.read.rawValue, stdin.write.rawValue]
            // Posix.pipe() makes the read end non-blocking (a flag of the shared file
            // description), as this side wants for stdout and stderr; the child's stdin must block.
            let flags = fcntl(stdin.read.rawValue, F_GETFL)
            _ = fcntl(stdin.read.rawValue, F_SETFL, flags & ~O_NONBLOCK)
        }
        let null = try Posix.openNullDevice()
        opened.append(null.rawValue)
        var merged: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") {
                merged[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            entry += 1
        }
        for name in removing { merged[name] = nil }
        // The test runner's own systemd variables, if any, are not for the child.
        for name in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"] where environment[name] == nil {
            merged[name] = nil
        }
        merged.merge(environment) { $1 }
        let request = ChildProcess.Request(
            path: arguments[0], arguments: arguments,
            environment: merged.map { "\($0.key)=\($0.value)" }.sorted(),
            fdMap: [(stdin?.read ?? null).rawValue, stdout.write.rawValue, stderr.write.rawValue] + extraFDs,
            newProcessGroup: true, workingDirectory: workingDirectory)
        process = try Self.spawnRetryingTextBusy(request)
        let kept = [stdout.read.rawValue, stderr.read.rawValue] + (stdin.map { [$0.write.rawValue] } ?? [])
        opened.removeAll { kept.contains($0) }
        stdoutFD = stdout.read.rawValue
        stderrFD = unreadStderr ? -1 : stderr.read.rawValue
        unreadStderrFD = unreadStderr ? stderr.read.rawValue : nil
        stdinFD = stdin?.write.rawValue
    }

    /// Whether a stderr pipe nobody reads (`unreadStderr`) is full: a writer would block.
    public var unreadStderrIsFull: Bool {
        guard let unreadStderrFD else { return false }
        // A write end of the same pipe, opened without writing anything, to ask poll().
        let probe = open("/proc/self/fd/\(unreadStderrFD)", O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        guard probe >= 0 else { return false }
        defer { close(probe) }
        var entry = pollfd(fd: probe, events: Int16(POLLOUT), revents: 0)
        return poll(&entry, 1, 0) == 0
    }

    /// A test that has just written a program may find it busy (ETXTBSY): another
    /// test thread that forked meanwhile holds a copy of the writer's fd until its
    /// child execs, microseconds to milliseconds. O_CLOEXEC cannot close that window,
    /// so a busy program is tried again for up to a second.
    static func spawnRetryingTextBusy(_ request: ChildProcess.Request) throws -> ChildProcess {
        var attempts = 0
        while true {
            let failure: ChildProcess.SpawnError
            do {
                return try ChildProcess.spawn(request)
            } catch {
                failure = error
            }
            guard failure.errno == .textFileBusy, attempts < 100 else { throw failure }
            attempts += 1
            usleep(10_000)
        }
    }

    deinit {
        if exit == nil {
            kill(process.pid, SIGKILL)
            _ = try? waitForExit(timeout: 5)
        }
        if let stdinFD { close(stdinFD) }
        if stdoutFD >= 0 { close(stdoutFD) }
        if stderrFD >= 0 { close(stderrFD) }
        if let unreadStderrFD { close(unreadStderrFD) }
        process.release()
    }

    /// Waits until a whole line of `stream` contains `fragment`; returns that line.
    /// `skip` passes over that many non-empty lines first.
    @discardableResult
    public func waitForLine(containing fragment: String, in stream: Stream = .stderr, after skip: Int = 0,
                            timeout: Double = 20) throws -> String {
        let deadline = Deadline(seconds: timeout)
        while true {
            let lines = wholeLines(of: stream).dropFirst(skip)
            if let line = lines.first(where: { $0.contains(fragment) }) { return String(line) }
            if deadline.hasPassed || (exit != nil && isClosed(stream)) {
                throw HarnessError("no line containing \"\(fragment)\" on \(stream) within \(timeout)s; \(output)")
            }
            pump(timeoutMS: deadline.pollTimeoutMS)
        }
    }

    /// The next whole line of `stream` that this method has not returned yet, without its newline.
    public func nextLine(in stream: Stream = .stdout, timeout: Double = 20) throws -> String {
        let deadline = Deadline(seconds: timeout)
        while true {
            let text = text(of: stream)
            let start = text.utf8.index(text.utf8.startIndex, offsetBy: consumed[stream, default: 0])
            if let newline = text.utf8[start...].firstIndex(of: UInt8(ascii: "\n")) {
                consumed[stream, default: 0] += text.utf8.distance(from: start, to: newline) + 1
                return String(text[start ..< newline])
            }
            if deadline.hasPassed || isClosed(stream) {
                throw HarnessError("no further line on \(stream) within \(timeout)s; \(output)")
            }
            pump(timeoutMS: deadline.pollTimeoutMS)
        }
    }

    /// Lines of `stream` containing `fragment`.
    public func lines(containing fragment: String, in stream: Stream = .stderr) -> [String] {
        pump(timeoutMS: 0)
        return wholeLines(of: stream).filter { $0.contains(fragment) }.map(String.init)
    }

    /// Waits for the process to end and for its output to close. When the
    /// process has ended but something it started keeps the output open, returns
    /// at the deadline; throws when the process itself still runs then.
    @discardableResult
    public func waitForExit(timeout: Double = 20) throws -> ProcessExit {
        let deadline = Deadline(seconds: timeout)
        while exit == nil || stdoutFD >= 0 || stderrFD >= 0 {
            if deadline.hasPassed {
                if let exit { return exit }
                throw HarnessError("pid \(pid) still running after \(timeout)s; \(output)")
            }
            pump(timeoutMS: deadline.pollTimeoutMS)
        }
        return exit!
    }

    public func signal(_ signal: Int32) { kill(process.pid, signal) }

    /// Closes the child's stdin pipe: it reads end of file.
    public func closeStdin() {
        if let stdinFD { close(stdinFD) }
        stdinFD = nil
    }

    /// Both streams, for a failure message.
    private var output: String { "stderr was:\n\(stderrText)\nstdout was:\n\(stdoutText)" }

    private func text(of stream: Stream) -> String { stream == .stdout ? stdoutText : stderrText }

    /// The non-empty lines of `stream` so far: the last one only once its newline
    /// has come or the stream has ended (a program may write a line in pieces).
    private func wholeLines(of stream: Stream) -> [Substring] {
        let text = text(of: stream)
        let whole = isClosed(stream) ? text[...] : text[..<(text.lastIndex(of: "\n") ?? text.startIndex)]
        return whole.split(separator: "\n")
    }

    private func isClosed(_ stream: Stream) -> Bool { (stream == .stdout ? stdoutFD : stderrFD) < 0 }

    /// Whether stderr has reached its end.
    var stderrClosed: Bool { isClosed(.stderr) }

    /// overseerd's JSON lines among the whole lines of stderr read so far, parsing those not parsed yet.
    func parsedEvents() -> [LoggedEvent] {
        let bytes = stderrText.utf8
        let start = bytes.index(bytes.startIndex, offsetBy: parsedBytes)
        // Whole lines only, as `wholeLines`: the last one once its newline has come or stderr has ended.
        let end = isClosed(.stderr) ? bytes.endIndex
            : (bytes[start...].lastIndex(of: UInt8(ascii: "\n")).map { bytes.index(after: $0) } ?? start)
        guard start < end else { return parsed }
        for line in bytes[start ..< end].split(separator: UInt8(ascii: "\n")) {
            if let event = LoggedEvent(line: String(decoding: line, as: UTF8.self), index: parsed.count) {
                parsed.append(event)
            }
        }
        parsedBytes += bytes.distance(from: start, to: end)
        return parsed
    }

    /// Reads what is there, waiting at most `timeoutMS` for something to happen.
    func pump(timeoutMS: Int32) {
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
            if count < 0 && errno == EINTR { continue }
            if count < 0 && errno == EAGAIN { return }
            // End of file (every copy of the write end is closed), or an error that stays.
            close(fd)
            fd = -1
            return
        }
    }
}

/// A point on the monotonic clock `seconds` from now.
private struct Deadline {
    let instant: ContinuousClock.Instant

    init(seconds: Double) { instant = .now + .milliseconds(Int64(seconds * 1000)) }

    var hasPassed: Bool { ContinuousClock.now >= instant }

    /// How long one poll may wait: until the deadline, and at most half a
    /// second, for a kernel without pidfds (then the exit is checked on each return).
    var pollTimeoutMS: Int32 {
        let (seconds, attoseconds) = (instant - .now).components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(max(0, min(500, milliseconds))) + 1
    }
}

// A child for overseerd's tests. It reports what it was given and behaves as
// the OTC_* variables tell it:
//   OTC_REPORT=FILE        write what it inherited (fds, env, signal mask, dispositions) to FILE
//   OTC_EXIT=N             exit with N right after reporting
//   OTC_KILL_SELF=SIG      die of SIG right after reporting
//   OTC_SERVE=1            answer HTTP on fd 3 (body names pid and generation)
//   OTC_SERVE=udp          answer each datagram on fd 3 with "generation G pid P count N": N counts
//                          the datagrams of that flow (source address and port) this process got
//   OTC_TERM_DRAIN_MS=N    on SIGTERM/SIGINT/SIGQUIT keep serving for N ms, then exit 0 (a graceful drain)
//   OTC_READY_AFTER_MS=N   send READY=1 to NOTIFY_SOCKET after N ms
//   OTC_EXIT_AFTER_MS=N    exit with OTC_EXIT_CODE (default 1) after N ms
//   OTC_IGNORE_TERM=1      log SIGTERM/SIGINT/SIGQUIT but keep running
//   OTC_TERM_HANG=1        on SIGTERM/SIGINT/SIGQUIT close the listener, then hang (a drain that never ends)
//   OTC_TERM_EXIT=N        on SIGTERM/SIGINT/SIGQUIT exit with N instead of dying of it
//   OTC_SLOW_MS=N          take N ms to answer each request
//   OTC_STATUS=TEXT        send STATUS=TEXT to NOTIFY_SOCKET at start
//   OTC_STDERR_BYTES=N     write N bytes of lines to stderr from a thread of its own (it may block there)
//   OTC_FAIL_WORKER=N      with --workers: worker N (OVERSEER_WORKER) exits with OTC_EXIT_CODE (default 1) at once, never ready
//   OTC_FAIL_BINARY=HEX    only when OVERSEER_BINARY_ID starts with HEX (a release that fails, not the one before it)
//   OTC_CONFIG=FILE        KEY=VALUE lines read at start that override the variables above,
//                          so a test can change what the next generation does
// Every signal it gets is printed on stdout as "signal SIGNAME pid PID".
import Glibc
import OverseerChild

let overrides: [String: String] = {
    guard let path = getenv("OTC_CONFIG").map({ String(cString: $0) }), let file = fopen(path, "r") else { return [:] }
    defer { fclose(file) }
    var result: [String: String] = [:]
    var line = [CChar](repeating: 0, count: 65536)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(cString: line).split(separator: "\n").first.map(String.init) ?? ""
        if let equals = text.firstIndex(of: "=") {
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
    }
    return result
}()

func env(_ name: String) -> String? {
    if name.hasPrefix("OTC_"), let value = overrides[name] { return value.isEmpty ? nil : value }
    return getenv(name).map { String(cString: $0) }
}

func say(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
}

func now() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
}

let signalNames: [Int32: String] = [
    SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGUSR1: "SIGUSR1", SIGUSR2: "SIGUSR2",
    SIGTERM: "SIGTERM", SIGWINCH: "SIGWINCH", SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGURG: "SIGURG",
    SIGCONT: "SIGCONT", SIGTSTP: "SIGTSTP", SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT",
]

func signalNumber(_ text: String) -> Int32 {
    let name = text.hasPrefix("SIG") ? text : "SIG" + text
    return signalNames.first(where: { $0.value == name })?.key ?? Int32(text) ?? SIGTERM
}

func procStatusField(_ name: String) -> String {
    guard let file = fopen("/proc/self/status", "r") else { return "?" }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 512)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(cString: line)
        if text.hasPrefix(name + ":") {
            return text.dropFirst(name.count + 1).trimmingCharacters()
        }
    }
    return "?"
}

extension Substring {
    func trimmingCharacters() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == "\n" || $0 == " " }).reversed())
    }
}

func socketDescription(_ fd: Int32) -> String {
    var type: Int32 = 0
    var length = socklen_t(4)
    guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else { return "not-a-socket" }
    var accepting: Int32 = 0
    length = 4
    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length)
    var storage = sockaddr_storage()
    length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    var address = "?"
    switch Int32(storage.ss_family) {
    case AF_INET:
        address = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                var copy = pointer.pointee.sin_addr
                var text = [CChar](repeating: 0, count: 64)
                inet_ntop(AF_INET, &copy, &text, 64)
                return "inet:\(String(cString: text)):\(UInt16(bigEndian: pointer.pointee.sin_port))"
            }
        }
    case AF_INET6:
        address = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                var copy = pointer.pointee.sin6_addr
                var text = [CChar](repeating: 0, count: 64)
                inet_ntop(AF_INET6, &copy, &text, 64)
                return "inet6:[\(String(cString: text))]:\(UInt16(bigEndian: pointer.pointee.sin6_port))"
            }
        }
    case AF_UNIX:
        address = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { pointer in
                withUnsafeBytes(of: pointer.pointee.sun_path) { raw in
                    "unix:" + String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
            }
        }
    default: break
    }
    let kind = type == Int32(SOCK_STREAM.rawValue) ? "stream" : type == Int32(SOCK_DGRAM.rawValue) ? "dgram" : "other"
    return "\(kind) \(address) listening=\(accepting)"
}

func writeReport(to path: String) {
    var lines: [String] = []
    lines.append("pid=\(getpid())")
    lines.append("ppid=\(getppid())")
    lines.append("pgid=\(getpgrp())")
    for name in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "LISTEN_PIDFDID", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
                 "OVERSEER_BINARY_PATH", "OVERSEER_BINARY_ID", "OVERSEER_GENERATION", "OTC_MARKER"] {
        lines.append("env.\(name)=\(env(name) ?? "<unset>")")
    }
    lines.append("SigBlk=\(procStatusField("SigBlk"))")
    lines.append("SigIgn=\(procStatusField("SigIgn"))")
    var open: [String] = []
    if let directory = opendir("/proc/self/fd") {
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let fd = Int32(name), fd != dirfd(directory) { open.append(name); _ = fd }
        }
        closedir(directory)
    }
    lines.append("fds=\(open.compactMap(Int.init).sorted().map(String.init).joined(separator: ","))")
    for fd in Int32(3) ..< 3 + Int32(env("LISTEN_FDS").flatMap(Int32.init) ?? 0) {
        let flags = fcntl(fd, F_GETFD)
        lines.append("fd.\(fd)=\(socketDescription(fd)) cloexec=\(flags >= 0 && (flags & FD_CLOEXEC) != 0 ? 1 : 0)")
    }
    let child = OverseerChild.current
    lines.append("library.names=\(child.sockets.map(\.name).joined(separator: ","))")
    lines.append("library.generation=\(child.generation.map(String.init) ?? "nil")")
    lines.append("env-after-library.LISTEN_FDS=\(env("LISTEN_FDS") ?? "<unset>")")
    let text = lines.joined(separator: "\n") + "\n"
    let temporary = path + ".tmp"
    guard let file = fopen(temporary, "w") else { return }
    fputs(text, file)
    fclose(file)
    rename(temporary, path)
}

// MARK: - main

OverseerChild.answerUpgradeCheckIfAsked()
if let report = env("OTC_REPORT") { writeReport(to: report) }
let child = OverseerChild.current
if let code = env("OTC_EXIT").flatMap(Int32.init) { exit(code) }
if let name = env("OTC_KILL_SELF") {
    let signo = signalNumber(name)
    signal(signo, SIG_DFL)
    raise(signo)
}
if let status = env("OTC_STATUS") { child.status(status) }

// Signals arrive through a self-pipe: the handler only writes the number.
nonisolated(unsafe) var signalPipe: [Int32] = [-1, -1]
pipe(&signalPipe)
nonisolated(unsafe) let signalWriteFD = signalPipe[1]
let signalFD = signalPipe[0]
for signo in signalNames.keys where ![SIGCONT, SIGTSTP, SIGKILL, SIGSEGV, SIGABRT].contains(signo) {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { signo in
        var byte = UInt8(truncatingIfNeeded: signo)
        _ = write(signalWriteFD, &byte, 1)
    }
    // Restarted, so that a stop signal arriving mid-request does not cut the
    // request short (read() returning EINTR) and reset the client's connection.
    action.sa_flags = SA_RESTART
    sigaction(signo, &action, nil)
}

let generation = env("OVERSEER_GENERATION") ?? "0"
let worker = env("OVERSEER_WORKER")
if let failing = env("OTC_FAIL_WORKER"), failing == worker,
   env("OTC_FAIL_BINARY").map({ (env("OVERSEER_BINARY_ID") ?? "").hasPrefix($0) }) ?? true {
    say("child failing worker \(failing) pid \(getpid())")
    exit(env("OTC_EXIT_CODE").flatMap(Int32.init) ?? 1)
}
let servesUDP = env("OTC_SERVE") == "udp" && !child.sockets.isEmpty
let serving = (env("OTC_SERVE") == "1" || servesUDP) && !child.sockets.isEmpty
var listener: Int32 = serving ? child.sockets[0].fd : -1
// Non-blocking, as event loops do: after poll() another generation may take the
// connection first, and a blocking accept() would then sleep through SIGTERM.
// (O_NONBLOCK is shared by every generation's copy of the socket.)
if listener >= 0 { _ = fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) | O_NONBLOCK) }
let start = now()
var readyAt: Int64? = env("OTC_READY_AFTER_MS").flatMap(Int64.init).map { start + $0 }
var exitAt: Int64? = env("OTC_EXIT_AFTER_MS").flatMap(Int64.init).map { start + $0 }
let drainMS = env("OTC_TERM_DRAIN_MS").flatMap(Int64.init)
/// Datagrams per flow, in this process's memory (OTC_SERVE=udp).
nonisolated(unsafe) var flowCounts: [String: Int] = [:]
var draining = false
let slowMS = env("OTC_SLOW_MS").flatMap(Int32.init) ?? 0
let ignoreTerm = env("OTC_IGNORE_TERM") == "1"
let hangOnTerm = env("OTC_TERM_HANG") == "1"
let termExit = env("OTC_TERM_EXIT").flatMap(Int32.init)
say("child started pid \(getpid()) generation \(generation)")

/// Writes `argument` (an `Int`) bytes of lines to stderr; on a thread of its own,
/// so that a stderr nobody reads blocks it, never the serving loop.
nonisolated func writeStderrLines(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let total = argument!.assumingMemoryBound(to: Int.self).pointee
    var line = Array(repeating: UInt8(ascii: "x"), count: 1023) + [UInt8(ascii: "\n")]
    var written = 0
    while written < total {
        let count = line.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress, min($0.count, total - written)) }
        if count <= 0 { break }
        written += count
    }
    return nil
}

if let total = env("OTC_STDERR_BYTES").flatMap(Int.init) {
    var thread = pthread_t()
    let size = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    size.pointee = total
    pthread_create(&thread, nil, writeStderrLines, size)
}

func answer(_ connection: Int32) {
    var buffer = [UInt8](repeating: 0, count: 4096)
    var received: [UInt8] = []
    while !received.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) && received.count < 65536 {
        let count = read(connection, &buffer, buffer.count)
        if count <= 0 { break }
        received += buffer.prefix(count)
    }
    if slowMS > 0 { usleep(useconds_t(slowMS) * 1000) }
    let body = "hello from pid \(getpid()) generation \(generation)\n"
    let response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nX-Pid: \(getpid())\r\nX-Generation: \(generation)\r\nX-Worker: \(worker ?? "-")\r\nConnection: close\r\n\r\n" + body
    var bytes = Array(response.utf8)
    _ = bytes.withUnsafeMutableBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    close(connection)
}

/// Answers every queued datagram: "generation G pid P count N", N the flow's datagrams so far.
func answerDatagrams(_ socket: Int32) {
    var buffer = [UInt8](repeating: 0, count: 2048)
    while true {
        var source = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let count = withUnsafeMutablePointer(to: &source) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(socket, &buffer, buffer.count, Int32(MSG_DONTWAIT), $0, &length) }
        }
        if count < 0 { return }
        let flow = withUnsafeBytes(of: &source) { Array($0.prefix(Int(length))) }.map { String($0, radix: 16) }.joined(separator: ".")
        flowCounts[flow, default: 0] += 1
        var reply = Array("generation \(generation) pid \(getpid()) count \(flowCounts[flow]!)".utf8)
        _ = withUnsafePointer(to: &source) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(socket, &reply, reply.count, 0, $0, length) }
        }
    }
}

while true {
    var deadline: Int64? = [readyAt, exitAt].compactMap { $0 }.min()
    if let at = deadline, at <= now() {
        if let at = readyAt, at <= now() {
            readyAt = nil
            say("child ready pid \(getpid())")
            child.ready()
        }
        if let at = exitAt, at <= now() {
            say("child exiting pid \(getpid())")
            exit(draining ? 0 : env("OTC_EXIT_CODE").flatMap(Int32.init) ?? 1)
        }
        continue
    }
    deadline = [readyAt, exitAt].compactMap { $0 }.min()
    var fds = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
    if listener >= 0 { fds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0)) }
    let timeout = deadline.map { Int32(max(0, $0 - now())) } ?? -1
    let ready = poll(&fds, nfds_t(fds.count), timeout)
    if ready <= 0 { continue }
    if fds[0].revents != 0 {
        var byte: UInt8 = 0
        if read(signalFD, &byte, 1) == 1 {
            let signo = Int32(byte)
            say("signal \(signalNames[signo] ?? "SIG\(signo)") pid \(getpid())")
            if signo == SIGTERM || signo == SIGINT || signo == SIGQUIT, let drainMS, !ignoreTerm {
                // Serve on until the drain ends, as a QUIC server finishing its connections does.
                if !draining { exitAt = now() + drainMS }
                draining = true
                continue
            }
            if signo == SIGTERM || signo == SIGINT || signo == SIGQUIT, !ignoreTerm {
                // Stop accepting: close (never shutdown) our copy of the shared listener.
                if listener >= 0 { close(listener); listener = -1 }
                if hangOnTerm { continue }
                if let termExit { exit(termExit) }
                signal(signo, SIG_DFL)
                raise(signo)
            }
        }
    }
    if fds.count > 1, fds[1].revents != 0, listener >= 0, servesUDP {
        answerDatagrams(listener)
    } else if fds.count > 1, fds[1].revents != 0, listener >= 0 {
        let connection = accept(listener, nil, nil)
        if connection >= 0 {
            // The accepted socket must block: answer() reads and writes it plainly.
            _ = fcntl(connection, F_SETFL, fcntl(connection, F_GETFL) & ~O_NONBLOCK)
            answer(connection)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

// Running small commands from the tests, waited for by their own pid.
//
// Not Foundation.Process: on Linux its waitUntilExit() spins a run loop and
// learns of the exit through a socket pair the child inherits (and any process
// forked meanwhile by another test may inherit too: swift-corelibs-foundation
// issue 4795). With two full runs side by side here, a waitUntilExit() in
// MinisignTests never returned (ten minutes, then timeout). popen/pclose and
// posix_spawn/waitpid wait for exactly their own pid.

/// What `command` (run by /bin/sh) printed on stdout; empty when it could not run.
public func shellOutput(_ command: String) -> String {
    guard let pipe = popen(command, "re") else { return "" }
    defer { pclose(pipe) }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&buffer, 1, buffer.count, pipe)
        if count == 0 { break }
        output += buffer.prefix(count)
    }
    return String(decoding: output, as: UTF8.self)
}

/// `text` quoted for /bin/sh.
public func shellQuoted(_ text: String) -> String {
    "'" + text.replacing("'", with: "'\\''") + "'"
}

/// The backlog of the listening socket that `ss -H` finds with `arguments`
/// (e.g. `-ltn 'sport = :8080'`, `-xl 'src /run/x.sock'`): its Send-Q.
public func listenBacklog(ss arguments: String) -> Int? {
    // TCP: State Recv-Q Send-Q Local Peer; unix: Netid State Recv-Q Send-Q Local …
    let line = shellOutput("ss -H \(arguments) 2>/dev/null").split(separator: "\n").first ?? ""
    let fields = line.split(separator: " ", omittingEmptySubsequences: true)
    guard let listen = fields.firstIndex(of: "LISTEN"), listen + 2 < fields.count else { return nil }
    return Int(fields[listen + 2])
}

/// Runs `path` with `arguments`, its stdout and stderr sent to /dev/null, and
/// returns its exit status (128 + N when killed by signal N); nil when it could not start.
public func runQuietly(_ path: String, _ arguments: [String]) -> Int32? {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, path, &actions, nil, argv, environ) == 0 else { return nil }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        guard errno == EINTR else { return nil }
    }
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : 128 + signal
}

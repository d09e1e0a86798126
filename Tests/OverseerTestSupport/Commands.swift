// Small commands run from the tests, through RunningProcess like every other process.

/// What `command` (run by /bin/sh) printed on stdout; empty when it could not run
/// or had not ended within `timeout` seconds.
public func shellOutput(_ command: String, timeout: Double = 60) -> String {
    guard let shell = try? RunningProcess(["/bin/sh", "-c", command]),
          (try? shell.waitForExit(timeout: timeout)) != nil else { return "" }
    return shell.stdoutText
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

/// Runs `path` with `arguments`, its output captured and dropped, and returns
/// its exit status (128 + N when killed by signal N); nil when it could not
/// start or had not ended within `timeout` seconds.
public func runQuietly(_ path: String, _ arguments: [String], timeout: Double = 60) -> Int32? {
    guard let run = try? RunningProcess([path] + arguments) else { return nil }
    return (try? run.waitForExit(timeout: timeout))?.shellStatus
}

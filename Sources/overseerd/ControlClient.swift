import Glibc
import OverseerCore
import OverseerDaemon
import OverseerProtocol

/// `overseerd status [--json]` and `overseerd restart [--wait]`: one request to
/// a running overseerd over its control socket.
enum ControlClient {
    /// Exit codes of the control commands.
    static let failed: Int32 = 1
    static let unreachable: Int32 = 69

    /// Runs the command in `arguments` (starting with `status` or `restart`); never returns.
    static func run(_ arguments: [String], environment: [String: String]) -> Never {
        var words = Array(arguments.dropFirst())
        var path = ControlSocketPath.defaultPath(environment: environment, uid: getuid())
        if let value = environment["OVERSEERD_CONTROL_SOCKET"] { path = value }
        var timeout = Duration.seconds(300)
        var flags: [String] = []
        while let word = words.first {
            words.removeFirst()
            if word == "--control-socket" || word.hasPrefix("--control-socket=") || word == "--timeout" || word.hasPrefix("--timeout=") {
                let (name, inline) = word.contains("=") ? (String(word.split(separator: "=")[0]), String(word.split(separator: "=", maxSplits: 1)[1])) : (word, nil)
                guard let value = inline ?? words.first else { Daemon.fail("\(name) needs a value — see overseerd --help", code: OverseerExitCode.usage) }
                if inline == nil { words.removeFirst() }
                if name == "--control-socket" {
                    path = value
                } else {
                    do { timeout = try Duration(parsing: value) } catch { Daemon.fail("\(error)", code: OverseerExitCode.usage) }
                }
            } else if word == "-h" || word == "--help" {
                print("""
                    USAGE: overseerd status [--json] [--control-socket PATH]
                           overseerd restart [--wait] [--timeout DURATION] [--control-socket PATH]
                           overseerd reexec [--control-socket PATH]

                    Asks the overseerd listening on PATH (default \(path)).
                    restart --wait returns once the new generation serves (exit 0) or the restart failed (exit 1).
                    reexec makes overseerd run its own binary anew (after a package upgrade), keeping the
                    listening sockets and the serving child.
                    Exit codes: 0 done, 1 the daemon answered with an error, 69 no daemon reachable, 64 usage.
                    """)
                exit(0)
            } else {
                flags.append(word)
            }
        }
        let line = ([arguments[0]] + flags).joined(separator: " ")
        let request: ControlRequest
        do {
            request = try ControlRequest(parsing: line)
        } catch {
            Daemon.fail("\(error) — see overseerd \(arguments[0]) --help", code: OverseerExitCode.usage)
        }
        let answer = exchange(request.line + "\n", path: path, timeout: timeout)
        let lines = answer.split(separator: "\n", omittingEmptySubsequences: false)
        guard let first = lines.first, first.hasPrefix(ControlAnswer.ok) else {
            let reason = lines.first.map { $0.hasPrefix(ControlAnswer.error + " ") ? String($0.dropFirst(6)) : String($0) } ?? "no answer"
            Daemon.fail(reason.isEmpty ? "no answer from the daemon at \(path)" : reason, code: failed)
        }
        var output = lines.dropFirst().joined(separator: "\n")
        if first.count > ControlAnswer.ok.count { output = String(first.dropFirst(ControlAnswer.ok.count + 1)) + "\n" + output }
        var bytes = Array(output.utf8)
        if !bytes.isEmpty, bytes.last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
        _ = bytes.withUnsafeMutableBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
        exit(0)
    }

    private static func exchange(_ request: String, path: String, timeout: Duration) -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { Daemon.fail("cannot make a socket: errno \(errno)", code: unreachable) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Daemon.fail("control socket path too long: \(path)", code: OverseerExitCode.usage)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let reason = String(cString: strerror(errno)).lowercased()
            Daemon.fail("cannot reach overseerd at \(path): \(reason) — is it running? give --control-socket PATH", code: unreachable)
        }
        let seconds = max(1, Int(timeout.totalNanoseconds / 1_000_000_000))
        var limit = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let out = Array(request.utf8)
        _ = out.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 { received += buffer.prefix(count); continue }
            if count < 0, errno == EAGAIN {
                Daemon.fail("no answer from overseerd at \(path) within \(timeout.shortDescription)", code: failed)
            }
            break
        }
        close(fd)
        return String(decoding: received, as: UTF8.self)
    }
}

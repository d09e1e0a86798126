import Foundation
import OverseerTestSupport

/// The local Python HTTP server (TestServerScript), started once for the whole test run.
/// It binds 127.0.0.1 port 0, prints the port, and exits when this process's pipe to its stdin closes.
final class TestServer: Sendable {
    let port: Int
    /// The same server over TLS with a self-signed certificate; nil when openssl(1) is missing.
    let tlsPort: Int?
    /// The bytes the server serves, by fixture name (`payload.bin`, `linux.bin`, `darwin.bin`).
    let fixtures: [String: Data]
    /// SHA-256 hex of each fixture, as Python's hashlib computed it.
    let digests: [String: String]
    private let process: RunningProcess

    /// The server every test shares.
    static let shared = Result { try TestServer() }

    var base: String { "http://127.0.0.1:\(port)" }

    /// A server of its own, for a test that reads what it prints.
    init() throws {
        let directory = try TemporaryDirectory()
        let fixtureDirectory = directory.path
        let script = directory.path + "/server.py"
        try testServerScript.write(toFile: script, atomically: true, encoding: .utf8)
        process = try RunningProcess(["/usr/bin/env", "python3", script, fixtureDirectory],
                                     removing: FetchTool.hiddenVariables, stdinPipe: true)
        let ports = try process.nextLine(timeout: 20).split(separator: " ").compactMap { Int($0) }
        guard ports.count == 2 else {
            // The process is killed as it goes with this failed init.
            throw HarnessError("the test HTTP server printed no ports: \(process.stderrText)")
        }
        port = ports[0]
        tlsPort = ports[1] == 0 ? nil : ports[1]
        var fixtures: [String: Data] = [:], digests: [String: String] = [:]
        for name in ["payload.bin", "linux.bin", "darwin.bin"] {
            fixtures[name] = try Data(contentsOf: URL(fileURLWithPath: fixtureDirectory + "/" + name))
            digests[name] = try String(contentsOfFile: fixtureDirectory + "/" + name + ".sha256", encoding: .utf8)
        }
        self.fixtures = fixtures
        self.digests = digests
        // Python has the script and the fixtures in memory now: `directory` goes on return.
    }

    /// The next line the server printed (the SIGTERM test's own server announces stalls).
    func nextLine(timeout: Double) -> String? { try? process.nextLine(timeout: timeout) }

    /// Closes the server's stdin, on which it exits, and waits 5 s for that (then it is killed with this value).
    func stop() {
        process.closeStdin()
        _ = try? process.waitForExit(timeout: 5)
    }
}

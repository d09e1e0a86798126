#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// `--metrics-listen` and `overseerd metrics`: the counters after real
/// restarts and upgrades, checked by Prometheus' own Python parser, and an
/// endpoint that hostile clients cannot use to hold overseerd up.
@Suite struct MetricsEndpointTests {
    /// The address from "metrics at http://ADDR/metrics".
    static func metricsPort(_ run: RunningProcess) throws -> UInt16 {
        let line = try run.waitForLine(containing: "metrics at http://")
        guard let url = line.split(separator: " ").last, let port = url.split(separator: "/").dropFirst().first?.split(separator: ":").last
            .flatMap({ UInt16($0) }) else { throw HarnessError("no port in \"\(line)\"") }
        return port
    }

    /// `curl -i` of the endpoint: (status line, body).
    static func scrape(port: UInt16? = nil, unixPath: String? = nil, path: String = "/metrics") throws -> (String, String) {
        var arguments = ["/usr/bin/curl", "-s", "-i", "--max-time", "10"]
        if let unixPath { arguments += ["--unix-socket", unixPath, "http://localhost\(path)"] } else {
            arguments.append("http://127.0.0.1:\(port!)\(path)")
        }
        let (exit, output, error) = try RunningProcess(arguments).waitForExitWithOutput()
        guard exit == .exited(0), let split = output.range(of: "\r\n\r\n") else { throw HarnessError("curl: \(exit) \(error)") }
        let head = output[..<split.lowerBound]
        return (String(head.split(separator: "\r\n").first ?? ""), String(output[split.upperBound...]))
    }

    /// The samples as `prometheus_client`'s parser (Debian's python3-prometheus-client) reads them,
    /// "name{label=value,…}" → value, after the rules of the text format its parser lets pass
    /// (line syntax, escapes, TYPE before samples, one TYPE and HELP per family, no duplicate
    /// sample, cumulative histogram buckets ending in +Inf = _count). Malformed text throws.
    /// A missing parser is a failure under CI=true; elsewhere the check is skipped (nil), said on stderr.
    static func parsed(_ text: String) throws -> [String: Double]? {
        let script = #"""
            import json, re, sys
            try:
                from prometheus_client.parser import text_string_to_metric_families
            except ImportError:
                sys.exit(3)
            text = sys.stdin.read()
            NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
            VALUE = r'"(?:\\[\\"n]|[^\\"\n])*"'
            LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*=" + VALUE
            SAMPLE = re.compile(r"^(" + NAME + r")(\{" + LABEL + r"(?:," + LABEL + r")*\})? (\S+)$")
            NUMBER = re.compile(r"^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)|[+-]Inf|NaN)$")
            types, helps, seen, order = {}, set(), set(), []
            def fail(why, line):
                sys.exit(f"{why}: {line!r}")
            def family(name):
                for suffix in ("_bucket", "_sum", "_count"):
                    if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
                        return name[:-len(suffix)]
                return name
            if not text.endswith("\n"):
                fail("no final newline", text[-40:])
            for line in text[:-1].split("\n"):
                if line.startswith("# TYPE "):
                    _, _, name, kind = line.split(" ", 3)
                    if name in types or kind not in ("counter", "gauge", "histogram", "summary", "untyped"):
                        fail("bad or repeated TYPE", line)
                    types[name] = kind
                elif line.startswith("# HELP "):
                    name = line.split(" ")[2]
                    if name in helps:
                        fail("repeated HELP", line)
                    helps.add(name)
                elif line.startswith("#"):
                    continue
                else:
                    m = SAMPLE.match(line)
                    if not m or not NUMBER.match(m.group(3)):
                        fail("malformed sample", line)
                    if family(m.group(1)) not in types:
                        fail("sample without TYPE before it", line)
                    if (m.group(1), m.group(2)) in seen:
                        fail("duplicate sample", line)
                    seen.add((m.group(1), m.group(2)))
            out = {}
            for fam in text_string_to_metric_families(text):
                for s in fam.samples:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                    out[s.name + ("{" + labels + "}" if labels else "")] = s.value
                out["type:" + fam.name] = {"counter": 1, "gauge": 2, "histogram": 3}.get(fam.type, 0)
                if fam.type == "histogram":
                    buckets = [(float(s.labels["le"]), s.value) for s in fam.samples if s.name.endswith("_bucket")]
                    count = [s.value for s in fam.samples if s.name.endswith("_count")]
                    ordered = all(a[0] < b[0] and a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
                    if not ordered or buckets[-1][0] != float("inf") or count != [buckets[-1][1]]:
                        fail("histogram buckets not cumulative or +Inf != _count", fam.name)
            print(json.dumps(out))
            """#
        let scratch = ScratchDirectory()
        let input = scratch.file("metrics.txt")
        try Data(text.utf8).write(to: URL(fileURLWithPath: input))
        // Debian's interpreter, where python3-prometheus-client is installed (not a python3 earlier on PATH).
        let (exit, output, error) = try RunningProcess(["/bin/sh", "-c", "exec /usr/bin/python3 -c \"$0\" < \"$1\"", script, input])
            .waitForExitWithOutput()
        withExtendedLifetime(scratch) {}
        if exit == .exited(3) {
            if SystemdInstance.isCI { throw HarnessError("CI=true, but python3-prometheus-client is missing: run scripts/setup") }
            FileHandle.standardError.write(Data("MetricsEndpointTests: python3-prometheus-client is missing (scripts/setup installs it); the parser check is skipped\n".utf8))
            return nil
        }
        guard exit == .exited(0) else { throw HarnessError("the metrics do not parse: \(error)\n\(text)") }
        guard let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Double] else {
            throw HarnessError("unexpected parser output: \(output.prefix(200))")
        }
        return object
    }

    /// The parser check itself rejects what the format forbids.
    @Test func theParserCheckCanFail() throws {
        guard try Self.parsed("# TYPE foo gauge\nfoo 1\n") != nil else { return }
        for bad in ["foo{a=\"b} 1\n", "# TYPE foo counter\nfoo{a=\"\\q\"} 1\n", "# TYPE foo gauge\nfoo 1\nfoo 2\n",
                    "foo 1\n", "# TYPE foo gauge\nfoo{a=\"x\ny\"} 1\n",
                    "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\n"] {
            #expect(throws: HarnessError.self, "\(bad)") { _ = try Self.parsed(bad) }
        }
        let escaped = try #require(try Self.parsed("# TYPE foo gauge\nfoo{a=\"\\\"\\n\"} 1\n"))
        #expect(escaped["foo{a=\"\n}"] == 1)
    }

    @Test func countersAfterFiveRestartsAndTwoUpgrades() throws {
        let deployment = try UpgradeTests.Deployment()
        let control = deployment.scratch.file("control.sock")
        let (run, _, _) = try deployment.start(["--probation", "0", "--metrics-listen", "127.0.0.1:0", "--control-socket", control], logFormat: .text)
        defer { run.signal(SIGTERM); _ = try? run.waitForExit() }
        let port = try Self.metricsPort(run)
        // Four restarts that succeed, one that fails (generation 6 exits with 3 before it is ready).
        for generation in 2 ... 5 {
            run.signal(SIGUSR2)
            try run.waitForLine(containing: "generation \(generation - 1) stopped")
        }
        deployment.configureNextGeneration("OTC_READY_AFTER_MS=\nOTC_EXIT_AFTER_MS=20\nOTC_EXIT_CODE=3\n")
        run.signal(SIGUSR2)
        try run.waitForLine(containing: "restart failed: generation 6 exited with status 3")
        deployment.configureNextGeneration("")
        // An upgrade that is installed (a sixth restart that succeeds), one that is rejected.
        let good = deployment.variant("v2")
        try deployment.deploy(good)
        try run.waitForLine(containing: "upgrade to \(try UpgradeTests.sha256(good).prefix(12)) done")
        try run.waitForLine(containing: "generation 5 stopped")
        try deployment.deploy(Data("#!/bin/sh\nexit 0\n".utf8))
        try run.waitForLine(containing: "upgrade rejected")

        let (status, text) = try Self.scrape(port: port)
        #expect(status == "HTTP/1.1 200 OK")
        guard let samples = try Self.parsed(text) else { return }
        let expected: [String: Double] = [
            "overseerd_generation": 7,
            "overseerd_restarts_total{result=succeeded}": 5,
            "overseerd_restarts_total{result=failed}": 1,
            "overseerd_restart_duration_seconds_count": 6,
            "overseerd_restart_duration_seconds_bucket{le=+Inf}": 6,
            "overseerd_ready_duration_seconds_count": 6,  // generations 1 to 5 and 7
            "overseerd_upgrades_total{result=installed}": 1,
            "overseerd_upgrades_total{result=rejected}": 1,
            "overseerd_upgrades_total{result=rolled_back}": 0,
            "overseerd_upgrade_polls_total{result=new}": 2,
            "overseerd_child_exits_total{how=signal}": 5,  // generations 1 to 5, stopped with SIGTERM
            "overseerd_child_exits_total{how=status}": 1,  // generation 6
            "overseerd_binary_info{sha256=\(try UpgradeTests.sha256(good)),version=}": 1,
            "type:overseerd_restarts": 1, "type:overseerd_restart_duration_seconds": 3, "type:process_cpu_seconds": 1,
        ]
        for (name, value) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(samples[name] == value, "\(name)")
        }
        let rss = try #require(samples["process_resident_memory_bytes"])
        #expect(rss > 1_000_000 && rss < 200_000_000)
        // Its listeners, control and notify sockets, epoll, timerfd, signalfd, inotify, the scrape's connection: about a dozen.
        let fds = try #require(samples["process_open_fds"])
        #expect(fds >= 8 && fds <= 32, "\(fds) fds")
        #expect(samples["process_cpu_seconds_total"] != nil)
        #expect(samples["overseerd_upgrade_polls_total{result=unchanged}"] != nil)

        // Status tells the same story: readiness, the last restart's duration, the last poll, overseerd's own use.
        let (_, statusText, _) = try RunningProcess([Binaries.overseerd, "status", "--control-socket", control]).waitForExitWithOutput()
        #expect(statusText.contains("generation 7 serving: pid "))
        #expect(statusText.contains(", ready after "))
        #expect(statusText.contains("last restart: succeeded "))
        #expect(statusText.contains(" ago in "))
        #expect(statusText.contains("upgrade state: last poll "))
        #expect(statusText.contains("resources: rss "))
        let (_, json, _) = try RunningProcess([Binaries.overseerd, "status", "--json", "--control-socket", control]).waitForExitWithOutput()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let generation = try #require((object["generations"] as? [[String: Any]])?.first)
        #expect((generation["ready_ms"] as? Int).map { $0 >= 0 && $0 < 60_000 } == true)
        #expect(((object["last_restart"] as? [String: Any])?["duration_ms"] as? Int).map { $0 >= 0 && $0 < 60_000 } == true)
        #expect((object["last_poll"] as? [String: Any])?["result"] as? String == "new")  // the rejected binary
        #expect((object["rss_bytes"] as? Int).map { $0 > 1_000_000 } == true)
        #expect((object["open_fds"] as? Int).map { $0 >= 8 && $0 <= 32 } == true)
        #expect(object["pending_install"] == nil)
    }

    @Test func metricsOverTheControlSocket() throws {
        let daemon = try ControlSocketTests.Daemon()
        let (exit, text, _) = try daemon.control(["metrics"])
        #expect(exit == .exited(0))
        #expect(text.contains("# TYPE overseerd_restarts_total counter\n"))
        #expect(text.contains("overseerd_generation 1\n"))
        #expect(!text.contains("overseerd_upgrades_total"), "no upgrades configured")
        if let samples = try Self.parsed(text) {
            #expect(samples["overseerd_restarts_total{result=succeeded}"] == 0)
            #expect(samples["overseerd_ready_duration_seconds_count"] == 1)
        }
    }

    @Test func badAddressesAndAPortInUseStopTheStart() throws {
        for (address, message) in [
            ("nonsense", "overseerd: bad --metrics-listen: bad listen address \"nonsense\": missing :PORT (write HOST:PORT, :PORT or unix:/path) — see overseerd --help\n"),
            ("udp:127.0.0.1:9", "overseerd: bad --metrics-listen \"udp:127.0.0.1:9\": HTTP needs a stream socket: give HOST:PORT or unix:/path — see overseerd --help\n"),
        ] {
            let (exit, _, error) = try RunningProcess.overseerd(["--metrics-listen", address, "--", "/bin/true"]).waitForExitWithOutput()
            #expect(exit == .exited(64))
            #expect(error == message)
        }
        let busy = try TCPListener()
        let (exit, _, error) = try RunningProcess.overseerd(["--metrics-listen", "127.0.0.1:\(busy.port)", "--", "/bin/true"])
            .waitForExitWithOutput()
        #expect(exit == .exited(71))
        #expect(error == "overseerd: cannot listen on 127.0.0.1:\(busy.port) (metrics): address already in use — another process is listening there; stop it or choose another port\n")
    }

    @Test func wrongPathsAndMethodsAndGarbage() throws {
        let run = try RunningProcess.overseerd(["--ready", "notify", "--metrics-listen", "[::1]:0", "-l", "127.0.0.1:0",
                                                "--", Binaries.testChild],
                                               environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0"])
        defer { run.signal(SIGTERM); _ = try? run.waitForExit() }
        let line = try run.waitForLine(containing: "metrics at http://[::1]:")
        let port = try #require(line.split(separator: ":").last?.split(separator: "/").first.flatMap { UInt16($0) })
        for (request, status) in [("GET / HTTP/1.1\r\n\r\n", "404"), ("DELETE /metrics HTTP/1.1\r\n\r\n", "405"),
                                  ("\u{16}\u{03}\u{01}\u{02}\u{00}\r\n\r\n", "400"), ("HEAD /metrics HTTP/1.1\r\n\r\n", "200")] {
            let connection = try TCPConnection(port: port, host: "::1")
            connection.send(Array(request.utf8))
            #expect(connection.receiveAll().hasPrefix("HTTP/1.1 \(status) "), "\(request.prefix(12))")
        }
    }

    /// RFC 9112: a target in absolute form is accepted (3.2.2), and an empty
    /// line before the request line is ignored (2.2).
    @Test func absoluteFormTargetsAndALeadingEmptyLineAreServed() throws {
        let (run, port) = try Self.serving()
        defer { run.signal(SIGTERM); _ = try? run.waitForExit() }
        for request in ["GET http://127.0.0.1:\(port)/metrics HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n",
                        "\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                        "\r\nGET HTTP://localhost/metrics?x=1 HTTP/1.0\r\n\r\n"] {
            let connection = try TCPConnection(port: port)
            connection.send(Array(request.utf8))
            let answer = connection.receiveAll()
            #expect(answer.hasPrefix("HTTP/1.1 200 "), "\(request.debugDescription): \(answer.prefix(40))")
            #expect(answer.contains("overseerd_generation 1"), "\(request.debugDescription)")
        }
    }

    /// overseerd with a serving test child and `--metrics-listen 127.0.0.1:0`; the endpoint's port.
    static func serving() throws -> (RunningProcess, UInt16) {
        let run = try RunningProcess.overseerd(["--ready", "notify", "--metrics-listen", "127.0.0.1:0", "-l", "127.0.0.1:0",
                                                "--", Binaries.testChild],
                                               environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0"])
        let port = try metricsPort(run)
        try run.waitForLine(containing: "generation 1 is ready")
        return (run, port)
    }

    @Test func hostileClientsAreDroppedAndARestartGoesOn() throws {
        let (run, port) = try Self.serving()
        defer { run.signal(SIGTERM); _ = try? run.waitForExit() }
        // A slowloris client (one byte at a time), a 1 MB request head, and clients that connect and say nothing.
        let slow = try TCPConnection(port: port)
        let opened = Date()
        let big = try TCPConnection(port: port)
        let silent = try (0 ..< 10).map { _ in try TCPConnection(port: port) }
        let bigAnswer = DispatchQueue.global()
        nonisolated(unsafe) var bigStatus = ""
        let bigDone = DispatchSemaphore(value: 0)
        bigAnswer.async {
            big.send(Array(("GET /metrics HTTP/1.1\r\nX: " + String(repeating: "a", count: 1 << 20)).utf8))
            bigStatus = big.receiveAll()
            bigDone.signal()
        }
        slow.send(Array("G".utf8))
        // While they hang on, a restart runs as usual, and a normal scrape is answered.
        run.signal(SIGUSR2)
        try run.waitForLine(containing: "generation 2 is ready")
        try run.waitForLine(containing: "generation 1 stopped")
        #expect(try Self.scrape(port: port).0 == "HTTP/1.1 200 OK")
        #expect(bigDone.wait(timeout: .now() + 10) == .success)
        #expect(bigStatus.hasPrefix("HTTP/1.1 431 "))
        for byte in "ET /metr".utf8 {
            slow.send([byte])
            usleep(200_000)
        }
        // Dropped at its 5 s deadline, answered or not.
        #expect(slow.receiveAll(timeout: 10) == "")
        let held = Date().timeIntervalSince(opened)
        #expect(held >= 4.5 && held < 9, "slowloris held \(held) s")
        for connection in silent { #expect(connection.receiveAll(timeout: 10) == "") }
        #expect(try Self.scrape(port: port).0 == "HTTP/1.1 200 OK")
        #expect(run.exit == nil)
    }

    @Test func aFloodOfConnectionsPausesTheListenerAndItRecovers() throws {
        let (run, port) = try Self.serving()
        defer { run.signal(SIGTERM); _ = try? run.waitForExit() }
        var flood = try (0 ..< 40).map { _ in try TCPConnection(port: port) }
        try run.waitForLine(containing: "metrics endpoint: 16 connections are open already; not accepting for 250ms")
        // overseerd itself still answers meanwhile.
        run.signal(SIGUSR2)
        try run.waitForLine(containing: "generation 2 is ready")
        flood.removeAll()
        #expect(try Self.scrape(port: port).0 == "HTTP/1.1 200 OK")
    }

    @Test func reexecKeepsTheEndpointWithoutLeakingItToTheChild() throws {
        let installed = try SelfUpgradeTests.Installed()
        let socket = installed.scratch.file("metrics.sock")
        let run = try installed.start(["--metrics-listen", "unix:" + socket], logFormat: .text)
        defer { run.signal(SIGTERM); _ = try? run.waitForExit() }
        try run.waitForLine(containing: "metrics at unix:\(socket)")
        let child = try #require(GracefulRestartTests.pid(in: try run.waitForLine(containing: "generation 1 started"), after: "pid"))
        try run.waitForLine(containing: "generation 1 is ready")
        let before = Self.fds(of: run.pid)
        #expect(try Self.scrape(unixPath: socket).0 == "HTTP/1.1 200 OK")
        #expect(!Self.holders(of: socket).contains(child), "the child does not have the metrics socket")

        try installed.upgrade()
        #expect(try installed.control(["reexec"]).0 == .exited(0))
        try run.waitForLine(containing: "took over from the previous overseerd image")
        #expect(run.lines(containing: "metrics at unix:").count == 1, "kept, not bound again")
        let (status, body) = try Self.scrape(unixPath: socket)
        #expect(status == "HTTP/1.1 200 OK")
        #expect(body.contains("overseerd_generation 1\n"))
        // The scrape's connection may still be closing when curl is done: wait for it, with a deadline.
        let deadline = Date().addingTimeInterval(5)
        while Self.fds(of: run.pid).count != before.count, Date() < deadline { usleep(10_000) }
        #expect(Self.fds(of: run.pid).count == before.count, "no fd gained or lost: \(before) → \(Self.fds(of: run.pid))")
        #expect(Self.holders(of: socket) == [run.pid])
        // And a restart's child does not get it either.
        #expect(try installed.control(["restart", "--wait"]).0 == .exited(0))
        let second = try #require(GracefulRestartTests.pid(in: try run.waitForLine(containing: "generation 2 started"), after: "pid"))
        #expect(!Self.holders(of: socket).contains(second))
        run.signal(SIGTERM)
        _ = try run.waitForExit()
        #expect(!FileManager.default.fileExists(atPath: socket), "the socket file is removed at exit")
    }

    /// A re-exec into an image that does not say it takes over the metrics listener (an older
    /// overseerd, here a wrapper that answers --check-configuration as one did): the listener
    /// closes with the exec, the new image binds it again, and the child serves on throughout.
    @Test func reexecIntoAnImageThatCannotTakeItOverBindsItAgain() throws {
        let installed = try SelfUpgradeTests.Installed()
        let socket = installed.scratch.file("metrics.sock")
        let run = try installed.start(["--metrics-listen", "unix:" + socket], logFormat: .text)
        defer { run.signal(SIGTERM); _ = try? run.waitForExit() }
        let child = try #require(GracefulRestartTests.pid(in: try run.waitForLine(containing: "generation 1 started"), after: "pid"))
        try run.waitForLine(containing: "generation 1 is ready")
        let real = installed.scratch.file("overseerd.real")
        try FileManager.default.copyItem(atPath: Binaries.overseerd, toPath: real)
        let wrapper = installed.scratch.file(".wrapper")
        try Data("""
            #!/bin/sh
            if [ "$1" = --check-configuration ]; then
                "\(real)" "$@" >/dev/null || exit $?
                echo "overseerd 0.1.0: the command line is valid"
                exit 0
            fi
            exec "\(real)" "$@"

            """.utf8).write(to: URL(fileURLWithPath: wrapper))
        chmod(wrapper, 0o755)
        guard rename(wrapper, installed.binary) == 0 else { throw HarnessError("rename: errno \(errno)") }

        #expect(try installed.control(["reexec"]).0 == .exited(0))
        try run.waitForLine(containing: "cannot take over the metrics endpoint (an older overseerd); it closes with the exec")
        try run.waitForLine(containing: "took over from the previous overseerd image: generation 1 (pid \(child)) keeps serving")
        #expect(run.lines(containing: "metrics at unix:\(socket)").count == 2, "bound again by the new image, before it took over")
        let (status, body) = try Self.scrape(unixPath: socket)
        #expect(status == "HTTP/1.1 200 OK")
        #expect(body.contains("overseerd_generation 1\n"))
        #expect(Self.holders(of: socket) == [run.pid])
        #expect(run.lines(containing: "no metrics endpoint").isEmpty)
    }

    /// What the fds of `pid` point to, in fd order.
    static func fds(of pid: Int32) -> [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).compactMap(Int.init).sorted()
        return names.map { "\($0):" + ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) ?? "?") }
    }

    /// The pids that hold the listening unix socket at `path` (its inode, from /proc/net/unix, in their fd tables).
    static func holders(of path: String) -> [Int32] {
        let table = (try? String(contentsOfFile: "/proc/net/unix", encoding: .utf8)) ?? ""
        // The listening socket's row (flag __SO_ACCEPTCON); accepted connections carry the path too.
        guard let row = table.split(separator: "\n").first(where: { $0.hasSuffix(" " + path) && $0.contains(" 00010000 ") }),
              let inode = row.split(separator: " ").dropLast().last else { return [] }
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
        return pids.filter { pid in
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            return fds.contains { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == "socket:[\(inode)]" }
        }.sorted()
    }
}

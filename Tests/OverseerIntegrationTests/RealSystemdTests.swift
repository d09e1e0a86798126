#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// overseerd under a real systemd 252, booted in private namespaces for each test
/// (scripts/systemd-instance) and driven with systemctl: what docs/OPERATIONS.md
/// and systemd/ claim, checked. Skipped where systemd cannot be booted (not root,
/// no CAP_SYS_ADMIN, no cgroup2), except with CI=true, where that fails.
@Suite(.serialized, .timeLimit(.minutes(2)),
       .enabled(if: SystemdInstance.unavailable == nil || SystemdInstance.isCI,
                Comment(rawValue: "systemd cannot be booted here: \(SystemdInstance.unavailable ?? "")")))
struct RealSystemdTests {
    // MARK: - Type=notify

    @Test func startReturnsAfterReadyAndStatusSaysWhatServes() throws {
        let port = try freePort()
        let units = ["app.service": try ExampleUnit.service(
            overseerd: ["--ready", "notify", "-l", "http=127.0.0.1:\(port)"],
            environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "500"])]
        try withSystemd(units) { systemd in
            let started = Date()
            try systemd.systemctl("start", "app.service")
            let took = Date().timeIntervalSince(started)
            let values = try systemd.properties("app.service", ["ActiveState", "SubState", "StatusText", "Type"])
            #expect(values["ActiveState"] == "active" && values["SubState"] == "running", "\(values)")
            #expect(took >= 0.5, "systemctl start returned after \(took)s, before the child's READY=1 (after 0.5s)")
            let main = try systemd.mainProcess(of: "app.service")
            #expect(HostProcess.executable(main) == Binaries.overseerd, "MainPID is overseerd")
            let child = try #require(systemd.processes(of: "app.service").first { HostProcess.parent($0) == main })
            let childPID = try #require(HostProcess.innermostPID(child))
            let binary = try sha256sum(Binaries.testChild).prefix(12)
            #expect(values["StatusText"] == "serving generation 1 (pid \(childPID), binary \(binary))")
            #expect(try HTTPClient.get(port: port).pid == childPID)
            // The control socket is in RuntimeDirectory=, where a shell must point at it.
            let status = try systemd.run([Binaries.overseerd, "status", "--control-socket", "/run/app/overseerd.sock"])
            #expect(status.exit == .exited(0) && status.stdout.contains("generation 1 serving: pid \(childPID), binary \(binary)"), "\(status)")
            // Only the test's own units exist: nothing of the stock /lib/systemd/system tree.
            let unitFiles = try systemd.systemctl("list-unit-files", "--no-legend", "--plain")
            #expect(!unitFiles.contains("tmpfiles") && !unitFiles.contains("udev") && unitFiles.split(separator: "\n").count < 20, "\(unitFiles)")
            try systemd.systemctl("stop", "app.service")
            #expect(try systemd.property("app.service", "Result") == "success")
        }
    }

    // MARK: - Reload

    @Test func twentyReloadsUnderLoadLoseNoRequest() throws {
        let port = try freePort()
        let units = ["app.service": try ExampleUnit.service(
            overseerd: ["--ready", "notify", "-l", "http=127.0.0.1:\(port)"], environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0"])]
        try withSystemd(units) { systemd in
            try systemd.systemctl("start", "app.service")
            let mainPID = try systemd.property("app.service", "MainPID")
            var servers: Set<String> = []
            let result = try underLoad(port: port) { load in
                load.waitUntilSucceeded(20)
                for generation in 2 ... 21 {
                    // On 252 systemctl reload may return before RELOADING=1 arrived: wait
                    // for the new generation to serve and the unit to be active again.
                    try systemd.systemctl("reload", "app.service")
                    let values = try systemd.waitFor("app.service", ["ActiveState", "StatusText"], what: "serving generation \(generation)") {
                        $0["ActiveState"] == "active" && $0["StatusText"]?.hasPrefix("serving generation \(generation) ") == true
                    }
                    servers.insert(ExampleUnit.servingPID(values["StatusText"] ?? ""))
                }
                let before = load.succeeded
                load.waitUntilSucceeded(before + 20)
            }
            #expect(result.failures.isEmpty, "\(result.failures.count) of \(result.succeeded + result.failures.count) requests failed: \(result.failures.prefix(5))")
            #expect(servers.count == 20, "a new child for each reload: \(servers.sorted())")
            let values = try systemd.properties("app.service", ["MainPID", "ActiveState", "NRestarts", "StatusText"])
            #expect(values["MainPID"] == mainPID && values["NRestarts"] == "0" && values["ActiveState"] == "active", "\(values)")
            #expect(values["StatusText"]?.hasSuffix("; last restart succeeded") == true, "\(values)")
            // The old generations are gone: overseerd and one child are left in the cgroup.
            let main = try systemd.mainProcess(of: "app.service")
            try waitUntil("one overseerd and one child in the unit's cgroup", timeout: 10) {
                let pids = systemd.processes(of: "app.service")
                return pids.count == 2 && pids.contains(main) && pids.contains { HostProcess.parent($0) == main }
            }
        }
    }

    // MARK: - Socket units and the fd store

    @Test func socketUnitIsPassedThroughWithItsNameAcrossReloads() throws {
        let port = try freePort()
        let scratch = ScratchDirectory()
        let report = scratch.file("report")
        let units = [
            "app.socket": try ExampleUnit.socket(listen: "127.0.0.1:\(port)"),
            "app.service": try ExampleUnit.service(overseerd: ["--ready", "notify"], socket: "app.socket",
                                                   environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0", "OTC_REPORT": report]),
        ]
        try withSystemd(units) { systemd in
            try systemd.systemctl("start", "app.socket")
            #expect(try systemd.property("app.service", "ActiveState") == "inactive")
            // The first connection starts the service and waits in the socket's queue meanwhile.
            #expect(try HTTPClient.get(port: port).status == 200)
            #expect(try systemd.property("app.service", "ActiveState") == "active")
            try systemd.waitForJournalLine("app.service", containing: "listening on 127.0.0.1:\(port) as http (tcp, fd 3, inherited)")
            for generation in 1 ... 2 {
                let values = try ChildReport.read(report)
                #expect(values["env.LISTEN_FDS"] == "1" && values["env.LISTEN_FDNAMES"] == "http", "\(values.values)")
                #expect(values["fd.3"] == "stream inet:127.0.0.1:\(port) listening=1 cloexec=0")
                #expect(values["env.OVERSEER_GENERATION"] == "\(generation)")
                #expect(try HTTPClient.get(port: port).headers["x-generation"] == "\(generation)")
                guard generation == 1 else { break }
                try FileManager.default.removeItem(atPath: report)
                try systemd.systemctl("reload", "app.service")
                try systemd.waitFor("app.service", ["ActiveState", "StatusText"], what: "serving generation 2") {
                    $0["ActiveState"] == "active" && $0["StatusText"]?.hasPrefix("serving generation 2 ") == true
                }
            }
            // Stopped, the service is started again by the next connection, which waits meanwhile.
            try systemd.systemctl("stop", "app.service")
            #expect(try HTTPClient.get(port: port).headers["x-generation"] == "1")
            #expect(try systemd.property("app.service", "ActiveState") == "active")
            try systemd.systemctl("stop", "app.service", "app.socket")
        }
    }

    @Test func restartOfOverseerdKeepsTheNamedSocketsInTheFDStore() throws {
        let port = try freePort()
        let units = ["app.service": try ExampleUnit.service(
            overseerd: ["--ready", "notify", "-l", "http=127.0.0.1:\(port)"], environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0"])]
        try withSystemd(units) { systemd in
            try systemd.systemctl("start", "app.service")
            #expect(try systemd.property("app.service", "NFileDescriptorStore") == "1", "overseerd stored its socket")
            let firstMain = try systemd.property("app.service", "MainPID")
            let result = try underLoad(port: port) { load in
                load.waitUntilSucceeded(20)
                for _ in 1 ... 2 {
                    // Synchronous with Type=notify: returns when the new overseerd is ready.
                    try systemd.systemctl("restart", "app.service")
                    load.waitUntilSucceeded(load.succeeded + 20)
                }
            }
            #expect(result.failures.isEmpty, "\(result.failures.count) of \(result.succeeded + result.failures.count) requests failed: \(result.failures.prefix(5))")
            let values = try systemd.properties("app.service", ["MainPID", "ActiveState", "NFileDescriptorStore"])
            #expect(values["MainPID"] != firstMain && values["ActiveState"] == "active" && values["NFileDescriptorStore"] == "1", "\(values)")
            let journal = systemd.journal("app.service")
            #expect(journal.components(separatedBy: "using the inherited socket named http instead of binding 127.0.0.1:\(port)").count == 3,
                    "both restarts took the stored socket:\n\(journal)")
        }
    }

    /// The child sees its sockets in --listen order after `systemctl restart` too,
    /// as README promises ("the http socket as fd 3"). (systemd 252 hands stored sockets back reversed.)
    @Test
    func restartWithTheFDStoreKeepsTheListenOrder() throws {
        let (http, admin) = (try freePort(), try freePort())
        let scratch = ScratchDirectory()
        let report = scratch.file("report")
        let units = ["app.service": try ExampleUnit.service(
            overseerd: ["--ready", "notify", "-l", "http=127.0.0.1:\(http)", "-l", "admin=127.0.0.1:\(admin)"],
            environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0", "OTC_REPORT": report])]
        try withSystemd(units) { systemd in
            try systemd.systemctl("start", "app.service")
            #expect(try systemd.property("app.service", "NFileDescriptorStore") == "2")
            for start in ["start", "restart"] {
                if start == "restart" {
                    try FileManager.default.removeItem(atPath: report)
                    try systemd.systemctl("restart", "app.service")
                }
                let values = try ChildReport.read(report)
                #expect(values["env.LISTEN_FDNAMES"] == "http:admin", "after \(start): \(values.values)")
                #expect(values["fd.3"] == "stream inet:127.0.0.1:\(http) listening=1 cloexec=0", "after \(start)")
                #expect(try HTTPClient.get(port: http, timeout: 5).status == 200)
            }
        }
    }

    // MARK: - overseerd reexec

    @Test func reexecKeepsMainPIDSocketsAndChild() throws {
        let port = try freePort()
        let units = ["app.service": try ExampleUnit.service(
            overseerd: ["--ready", "notify", "-l", "http=127.0.0.1:\(port)"], environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0"])]
        try withSystemd(units) { systemd in
            try systemd.systemctl("start", "app.service")
            let before = try systemd.properties("app.service", ["MainPID", "StatusText"])
            let result = try underLoad(port: port) { load in
                load.waitUntilSucceeded(20)
                let reexec = try systemd.run([Binaries.overseerd, "reexec", "--control-socket", "/run/app/overseerd.sock"])
                #expect(reexec.exit == .exited(0), "\(reexec.stderr)")
                #expect(reexec.stdout.hasPrefix("re-executing \(Binaries.overseerd) (version "), "\(reexec.stdout)")
                try systemd.waitForJournalLine("app.service", containing: "took over from the previous overseerd image: generation 1")
                load.waitUntilSucceeded(load.succeeded + 20)
            }
            #expect(result.failures.isEmpty, "\(result.failures.count) requests failed: \(result.failures.prefix(5))")
            let after = try systemd.properties("app.service", ["MainPID", "ActiveState", "SubState", "NRestarts", "StatusText"])
            #expect(after["MainPID"] == before["MainPID"] && after["ActiveState"] == "active" && after["NRestarts"] == "0", "\(after)")
            #expect(after["StatusText"] == before["StatusText"], "the same child serves")
            #expect(result.pids.count == 1, "one child answered throughout: \(result.pids)")
            #expect(systemd.journal("app.service").contains("listening on 127.0.0.1:\(port) as http (tcp, fd 3, kept)"))
            try systemd.systemctl("stop", "app.service")
            #expect(try systemd.property("app.service", "Result") == "success")
        }
    }

    // MARK: - Watchdog

    @Test func watchdogAutoKeepsTheUnitAlive() throws {
        let units = ["app.service": try ExampleUnit.service(
            overseerd: ["--ready", "notify", "--watchdog", "auto"], environment: ["OTC_READY_AFTER_MS": "0"], extra: ["WatchdogSec=1s"])]
        try withSystemd(units) { systemd in
            try systemd.systemctl("start", "app.service")
            let mainPID = try systemd.property("app.service", "MainPID")
            try systemd.waitForJournalLine("app.service", containing: "systemd watchdog every 1s")
            // Two intervals and a half: without pings systemd would have acted after one.
            let deadline = Date().addingTimeInterval(2.5)
            while Date() < deadline {
                let values = try systemd.properties("app.service", ["ActiveState", "MainPID", "NRestarts"])
                #expect(values["ActiveState"] == "active" && values["MainPID"] == mainPID && values["NRestarts"] == "0", "\(values)")
                if values["ActiveState"] != "active" { break }
                usleep(100_000)
            }
        }
    }

    @Test func watchdogRelayLetsSystemdEndAHungChild() throws {
        let scratch = ScratchDirectory()
        let stop = scratch.file("stop-pinging")
        let child = scratch.file("pinger.py")
        // Pings at a quarter of WATCHDOG_USEC until the file `stop` exists, then hangs.
        try Data("""
        import os, socket, sys, time
        def notify(message):
            address = os.environ["NOTIFY_SOCKET"]
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.connect("\\0" + address[1:] if address.startswith("@") else address)
                s.send(message.encode())
        notify("READY=1")
        interval = int(os.environ["WATCHDOG_USEC"]) / 4e6
        while not os.path.exists(sys.argv[1]):
            notify("WATCHDOG=1")
            time.sleep(interval)
        while True:
            time.sleep(3600)

        """.utf8).write(to: URL(fileURLWithPath: child))
        let units = ["app.service": try ExampleUnit.service(
            overseerd: ["--ready", "notify", "--watchdog", "relay"], program: ["/usr/bin/python3", child, stop],
            extra: ["WatchdogSec=1s", "Restart=no"])]
        try withSystemd(units) { systemd in
            try systemd.systemctl("start", "app.service")
            try systemd.waitForJournalLine("app.service", containing: "systemd watchdog every 1s, relayed from the serving child")
            // The child's pings, relayed, keep the unit alive for two intervals and a half.
            let deadline = Date().addingTimeInterval(2.5)
            while Date() < deadline {
                let state = try systemd.property("app.service", "ActiveState")
                #expect(state == "active")
                if state != "active" { break }
                usleep(100_000)
            }
            FileManager.default.createFile(atPath: stop, contents: nil)
            let values = try systemd.waitFor("app.service", ["ActiveState", "Result"], what: "ended by the watchdog") {
                $0["ActiveState"] == "failed" || $0["ActiveState"] == "inactive"
            }
            #expect(values["Result"] == "watchdog", "\(values)")
            #expect(systemd.journal("app.service").contains("Watchdog timeout"))
            try systemd.systemctl("reset-failed", "app.service")
        }
    }

    /// A re-exec in relay mode must not leave systemd without a ping for longer
    /// than WatchdogSec=. The new image is handed the serving child's last ping.
    @Test
    func reexecInRelayModeKeepsTheWatchdogFed() throws {
        let scratch = ScratchDirectory()
        let child = scratch.file("pinger.py")
        // Pings at a quarter of WATCHDOG_USEC, for ever.
        try Data("""
        import os, socket, time
        address = os.environ["NOTIFY_SOCKET"]
        address = "\\0" + address[1:] if address.startswith("@") else address
        def notify(message):
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.connect(address)
                s.send(message.encode())
        notify("READY=1")
        while True:
            notify("WATCHDOG=1")
            time.sleep(int(os.environ["WATCHDOG_USEC"]) / 4e6)

        """.utf8).write(to: URL(fileURLWithPath: child))
        let units = ["app.service": try ExampleUnit.service(
            overseerd: ["--ready", "notify", "--watchdog", "relay"], program: ["/usr/bin/python3", child],
            extra: ["WatchdogSec=400ms", "Restart=no"])]
        try withSystemd(units) { systemd in
            try systemd.systemctl("start", "app.service")
            for _ in 1 ... 10 {
                let reexec = try systemd.run([Binaries.overseerd, "reexec", "--control-socket", "/run/app/overseerd.sock"])
                #expect(reexec.exit == .exited(0), "\(reexec)")
                usleep(UInt32.random(in: 100_000 ... 300_000))
                let values = try systemd.properties("app.service", ["ActiveState", "Result"])
                #expect(values["ActiveState"] == "active" && values["Result"] == "success", "\(values)")
                if values["ActiveState"] != "active" { break }
            }
        }
    }

    // MARK: - Stop and crash

    @Test func stopWithKillModeMixedLeavesNothingInTheCgroup() throws {
        let scratch = ScratchDirectory()
        let wrapper = scratch.file("child.sh")
        // One grandchild stays in the child's process group (overseerd's to clean),
        // one leaves it with setsid (only systemd knows it, by its cgroup).
        try Data("#!/bin/sh\nsleep 300 &\nsetsid sleep 301 &\nexec \(Binaries.testChild)\n".utf8).write(to: URL(fileURLWithPath: wrapper))
        chmod(wrapper, 0o755)
        let units = ["app.service": try ExampleUnit.service(overseerd: ["--ready", "notify"], program: [wrapper],
                                                            environment: ["OTC_READY_AFTER_MS": "0"])]
        try withSystemd(units) { systemd in
            try systemd.systemctl("start", "app.service")
            try waitUntil("overseerd, the child and two sleeps in the cgroup", timeout: 10) {
                systemd.processes(of: "app.service").count == 4
            }
            try systemd.systemctl("stop", "app.service")
            let values = try systemd.properties("app.service", ["ActiveState", "Result", "KillMode"])
            #expect(values["ActiveState"] == "inactive" && values["Result"] == "success" && values["KillMode"] == "mixed", "\(values)")
            #expect(systemd.processes(of: "app.service").isEmpty)
            // overseerd's warning carries its priority into the journal.
            let warnings = try systemd.run(["journalctl", "--no-pager", "-o", "cat", "-p", "warning", "-u", "app.service"]).stdout
            #expect(warnings.contains("killed 1 process(es) left by generation 1"), "journalctl -p warning:\n\(warnings)")
            #expect(!warnings.contains("generation 1 started"), "an info line is not a warning")
            let left = systemd.allProcesses().map(HostProcess.commandName).filter { $0 == "sleep" || $0.hasPrefix("Overseer") || $0 == "overseerd" }
            #expect(left.isEmpty, "left in the instance: \(left)")
        }
    }

    // MARK: - The journal

    /// With stderr on the journal (systemd's default), overseerd writes entries of its
    /// own to journald, each with its event and fields, and nothing twice.
    @Test func journalEntriesCarryTheEventAndItsFields() throws {
        let scratch = ScratchDirectory()
        let config = scratch.file("child.conf")
        try Data("OTC_READY_AFTER_MS=0\n".utf8).write(to: URL(fileURLWithPath: config))
        let port = try freePort()
        let units = ["app.service": try ExampleUnit.service(
            overseerd: ["--ready", "notify", "-l", "http=127.0.0.1:\(port)"],
            environment: ["OTC_SERVE": "1", "OTC_CONFIG": config, "OTC_STATUS": "up\u{1b}[1m bold"])]
        try withSystemd(units) { systemd in
            try systemd.systemctl("start", "app.service")
            let main = try systemd.property("app.service", "MainPID")
            // A restart whose new generation exits before it is ready.
            try Data("OTC_EXIT_AFTER_MS=20\nOTC_EXIT_CODE=3\n".utf8).write(to: URL(fileURLWithPath: config))
            try systemd.systemctl("kill", "-s", "USR2", "--kill-whom=main", "app.service")
            let failed = try Self.journalEntry(systemd, "OVERSEERD_EVENT=restart_failed")
            #expect(failed["PRIORITY"] == "3" && failed["OVERSEERD_GENERATION"] == "2", "\(failed)")
            #expect(failed["_SYSTEMD_UNIT"] == "app.service" && failed["SYSLOG_IDENTIFIER"] == "overseerd", "\(failed)")
            #expect(failed["_PID"] == main, "sent by overseerd itself: \(failed)")
            #expect(failed["OVERSEERD_BINARY"] == (try sha256sum(Binaries.testChild)), "\(failed)")
            let childPID = try #require(failed["OVERSEERD_PID"].flatMap { Int32($0) }, "\(failed)")
            #expect(String(childPID) != main)
            #expect(failed["MESSAGE"]?.hasPrefix("restart failed: generation 2 exited with status 3 before ready") == true, "\(failed)")
            // Queried by the field, not by the wording: the first generation's readiness and its STATUS=, escaped.
            let ready = try Self.journalEntry(systemd, "OVERSEERD_EVENT=generation_ready", "OVERSEERD_GENERATION=1")
            #expect(ready["PRIORITY"] == "6" && ready["OVERSEERD_BINARY"] == failed["OVERSEERD_BINARY"], "\(ready)")
            let status = try Self.journalEntry(systemd, "OVERSEERD_EVENT=child_status", "OVERSEERD_GENERATION=1")
            #expect(status["MESSAGE"] == "generation 1 status: up\\x1b[1m bold", "\(status)")
            // Once: through the native socket, not also on the stderr stream.
            let text = systemd.journal("app.service")
            #expect(text.components(separatedBy: "restart failed: generation 2").count == 2, "\(text)")
            try systemd.systemctl("stop", "app.service")
        }
    }

    /// The newest journal entry matching all of `matches` (`FIELD=value`), as its fields; waits for it.
    static func journalEntry(_ systemd: SystemdInstance, _ matches: String...) throws -> [String: String] {
        var last = ""
        try waitUntil("a journal entry with \(matches)", timeout: 10) {
            last = try systemd.run(["journalctl", "--no-pager", "-o", "json", "-n", "1"] + matches).stdout
            return !last.isEmpty
        }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any], "\(last)")
        return object.compactMapValues { $0 as? String }
    }

    @Test func childKilledBySIGKILLIsRestartedBySystemd() throws {
        let port = try freePort()
        let units = ["app.service": try ExampleUnit.service(
            overseerd: ["--ready", "notify", "-l", "http=127.0.0.1:\(port)"], environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0"])]
        try withSystemd(units) { systemd in
            try systemd.systemctl("start", "app.service")
            let main = try systemd.mainProcess(of: "app.service")
            let firstMain = try systemd.property("app.service", "MainPID")
            let child = try #require(systemd.processes(of: "app.service").first { HostProcess.parent($0) == main })
            kill(child, SIGKILL)
            let values = try systemd.waitFor("app.service", ["ActiveState", "NRestarts", "MainPID"], what: "restarted once") {
                $0["ActiveState"] == "active" && $0["NRestarts"] == "1"
            }
            #expect(values["MainPID"] != firstMain)
            let journal = systemd.journal("app.service")
            #expect(journal.contains("Main process exited, code=killed, status=9/KILL"), "overseerd died of SIGKILL too:\n\(journal)")
            #expect(journal.contains("Scheduled restart job, restart counter is at 1"))
            #expect(journal.contains("using the inherited socket named http instead of binding"), "the fd store is kept through Restart=")
            #expect(try HTTPClient.get(port: port).status == 200)
        }
    }

    // MARK: - The shipped units

    /// The drop-in for systemd ≥ 253 (systemd/overseerd-example.service.d/notify-reload.conf.example):
    /// on 252 it does what its comment warns of; on 253 and later, reload becomes synchronous.
    @Test func notifyReloadDropIn() throws {
        let version = try #require(Int(shellOutput("systemctl --version").split(separator: " ").dropFirst().first ?? ""))
        let dropIn = try String(contentsOfFile: SystemdInstance.projectRoot + "/systemd/overseerd-example.service.d/notify-reload.conf.example",
                                encoding: .utf8)
        let units = [
            "app.service": try ExampleUnit.service(overseerd: ["--ready", "notify"], environment: ["OTC_READY_AFTER_MS": "0"]),
            "app.service.d/notify-reload.conf": dropIn,
        ]
        try withSystemd(units) { systemd in
            try systemd.systemctl("start", "app.service")
            let type = try systemd.property("app.service", "Type")
            let reload = try systemd.run(["systemctl", "reload", "app.service"])
            if version < 253 {
                // Type= stays notify, ExecReload= is emptied: reload does nothing.
                #expect(type == "notify")
                #expect(systemd.journal().contains("Failed to parse service type, ignoring: notify-reload"))
                #expect(reload.exit != .exited(0) && reload.stderr.contains("not applicable"), "\(reload)")
            } else {
                #expect(type == "notify-reload")
                #expect(reload.exit == .exited(0), "\(reload)")
                #expect(try systemd.property("app.service", "StatusText").hasPrefix("serving generation 2 "),
                        "reload returned once the new generation served")
            }
        }
    }

    @Test func exampleUnitHardeningLeavesAFileUpgradeWorking() throws {
        let port = try freePort()
        let scratch = ScratchDirectory()
        let units = try ExampleUnit.shipped(from: SystemdInstance.projectRoot + "/systemd", port: port, upgrades: true)
        try withSystemd(units) { systemd in
            try ExampleUnit.install(in: systemd, scratch: scratch)
            try systemd.systemctl("start", "overseerd-example.socket", "overseerd-example.service")
            let hardening = try systemd.properties("overseerd-example.service", ["NoNewPrivileges", "ProtectSystem", "PrivateTmp", "ReadWritePaths", "RestrictNamespaces"])
            #expect(hardening["NoNewPrivileges"] == "yes" && hardening["ProtectSystem"] == "strict" && hardening["PrivateTmp"] == "yes", "\(hardening)")
            #expect(hardening["ReadWritePaths"] == "/usr/local/lib/overseerd-example", "\(hardening)")
            let first = try HTTPClient.get(port: port)
            #expect(first.headers["x-generation"] == "1")
            #expect(FileManager.default.fileExists(atPath: systemd.insidePath("/run/overseerd-example/admin.sock")))

            // A new binary (other bytes, same program), deployed by rename.
            var bytes = try Data(contentsOf: URL(fileURLWithPath: Binaries.testChild))
            bytes.append(contentsOf: Array("upgrade \(UInt64.random(in: 0 ... .max))".utf8))
            try bytes.write(to: URL(fileURLWithPath: systemd.insidePath("/srv/deploy/.app.tmp")))
            chmod(systemd.insidePath("/srv/deploy/.app.tmp"), 0o755)
            rename(systemd.insidePath("/srv/deploy/.app.tmp"), systemd.insidePath("/srv/deploy/app"))
            let newBinary = try sha256sum(systemd.insidePath("/srv/deploy/app")).prefix(12)
            let values = try systemd.waitFor("overseerd-example.service", ["ActiveState", "StatusText"], what: "upgraded") {
                $0["ActiveState"] == "active" && $0["StatusText"]?.contains("binary \(newBinary))") == true
            }
            #expect(values["StatusText"]?.hasPrefix("serving generation 2 ") == true, "\(values)")
            #expect(try HTTPClient.get(port: port).headers["x-generation"] == "2")
            let installed = systemd.insidePath("/usr/local/lib/overseerd-example/app")
            #expect(try sha256sum(installed).prefix(12) == newBinary)
            #expect(FileManager.default.fileExists(atPath: installed + ".previous"))
            try systemd.systemctl("stop", "overseerd-example.service", "overseerd-example.socket")
            #expect(try systemd.property("overseerd-example.service", "Result") == "success")
        }
    }

    /// The same hardening with a network fetch: overseerd-fetch (libcurl) runs
    /// under NoNewPrivileges=, RestrictAddressFamilies= and ProtectSystem=strict.
    @Test func exampleUnitHardeningLeavesAnHTTPUpgradeWorking() throws {
        let port = try freePort()
        let scratch = ScratchDirectory()
        let site = scratch.file("site")
        let server = try NetworkUpgradeTests.FileServer(directory: site)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: Binaries.testChild))
        bytes.append(contentsOf: Array("http upgrade \(UInt64.random(in: 0 ... .max))".utf8))
        try bytes.write(to: URL(fileURLWithPath: site + "/app"))
        let newBinary = try sha256sum(site + "/app")
        try Data("\(newBinary)  app\n".utf8).write(to: URL(fileURLWithPath: site + "/app.sha256"))
        var units = try ExampleUnit.shipped(from: SystemdInstance.projectRoot + "/systemd", port: port, upgrades: false)
        units["overseerd-example.service.d/fetch.conf"] =
            "[Service]\nEnvironment=OVERSEERD_FETCH=http://127.0.0.1:\(server.port)/app OVERSEERD_CHECKSUM=sidecar\n"
        try withSystemd(units) { systemd in
            try ExampleUnit.install(in: systemd, scratch: scratch)
            try systemd.systemctl("start", "overseerd-example.service")
            let values = try systemd.waitFor("overseerd-example.service", ["ActiveState", "StatusText"], what: "upgraded over HTTP") {
                $0["ActiveState"] == "active" && $0["StatusText"]?.contains("binary \(newBinary.prefix(12)))") == true
            }
            #expect(values["StatusText"]?.hasPrefix("serving generation 2 ") == true, "\(values)")
            #expect(try HTTPClient.get(port: port).headers["x-generation"] == "2")
            try systemd.systemctl("stop", "overseerd-example.service", "overseerd-example.socket")
            #expect(try systemd.property("overseerd-example.service", "Result") == "success")
        }
    }

    /// The example unit's own comments: `systemctl restart` queues connections in
    /// the socket unit, and overseerd re-executes itself under the hardening.
    @Test func exampleUnitsRestartAndReexecUnderLoad() throws {
        let port = try freePort()
        let scratch = ScratchDirectory()
        let units = try ExampleUnit.shipped(from: SystemdInstance.projectRoot + "/systemd", port: port, upgrades: false)
        try withSystemd(units) { systemd in
            try ExampleUnit.install(in: systemd, scratch: scratch)
            try systemd.systemctl("start", "overseerd-example.service")
            var mainPID = ""
            let result = try underLoad(port: port) { load in
                load.waitUntilSucceeded(20)
                try systemd.systemctl("restart", "overseerd-example.service")
                load.waitUntilSucceeded(load.succeeded + 20)
                mainPID = try systemd.property("overseerd-example.service", "MainPID")
                // The copy `install` put in the instance: the build directory may be under /srv, which the
                // instance covers with a tmpfs of its own.
                let reexec = try systemd.run(["/usr/bin/overseerd", "reexec", "--control-socket", "/run/overseerd-example/overseerd.sock"])
                #expect(reexec.exit == .exited(0), "\(reexec)")
                try systemd.waitForJournalLine("overseerd-example.service", containing: "took over from the previous overseerd image")
                load.waitUntilSucceeded(load.succeeded + 20)
            }
            #expect(result.failures.isEmpty, "\(result.failures.count) of \(result.succeeded + result.failures.count) requests failed: \(result.failures.prefix(5))")
            let values = try systemd.properties("overseerd-example.service", ["MainPID", "ActiveState", "NRestarts"])
            #expect(values["MainPID"] == mainPID && values["ActiveState"] == "active" && values["NRestarts"] == "0", "\(values)")
            try systemd.systemctl("stop", "overseerd-example.service", "overseerd-example.socket")
            #expect(try systemd.property("overseerd-example.service", "Result") == "success")
        }
    }

    /// The unit shipped in the .deb, started from the unpacked package tree
    /// (`root`, from dpkg -x): called by PackagingTests, which builds the package.
    static func startShippedUnit(fromPackageTree root: String) throws {
        let port = try freePort()
        let scratch = ScratchDirectory()
        let units = try ExampleUnit.shipped(from: root + "/usr/share/doc/overseerd/examples", port: port, upgrades: false)
        try withSystemd(units) { systemd in
            try ExampleUnit.install(in: systemd, scratch: scratch, packageTree: root)
            try systemd.systemctl("start", "overseerd-example.service")
            let main = try systemd.mainProcess(of: "overseerd-example.service")
            #expect(HostProcess.executable(main) == "/usr/bin/overseerd", "the packaged overseerd runs")
            let response = try HTTPClient.get(port: port)
            #expect(response.status == 200)
            let status = try systemd.property("overseerd-example.service", "StatusText")
            #expect(status.hasPrefix("serving generation 1 (pid \(response.pid ?? -1), binary "), "\(status)")
            try systemd.systemctl("reload", "overseerd-example.service")
            try systemd.waitFor("overseerd-example.service", ["ActiveState", "StatusText"], what: "serving generation 2") {
                $0["ActiveState"] == "active" && $0["StatusText"]?.hasPrefix("serving generation 2 ") == true
            }
            try systemd.systemctl("stop", "overseerd-example.service", "overseerd-example.socket")
            #expect(try systemd.property("overseerd-example.service", "Result") == "success")
        }
    }
}

/// Units built from the shipped systemd/overseerd-example.service and .socket.
enum ExampleUnit {
    static let shippedService = SystemdInstance.projectRoot + "/systemd/overseerd-example.service"
    static let shippedSocket = SystemdInstance.projectRoot + "/systemd/overseerd-example.socket"

    /// The lines of `section` in `path` whose keys are in `keys`, as they are there.
    static func lines(of path: String, section: String, keys: [String]) throws -> [String] {
        var current = ""
        var result: [String] = []
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            if line.hasPrefix("[") { current = String(line); continue }
            guard current == "[\(section)]", let equals = line.firstIndex(of: "="), keys.contains(String(line[..<equals])) else { continue }
            result.append(String(line))
        }
        return result
    }

    /// A service like the shipped one (its Type=, NotifyAccess=, ExecReload=,
    /// KillMode=, TimeoutStopSec=, Restart=, FileDescriptorStoreMax= and
    /// Environment= lines), running the built overseerd with `program`, without
    /// the hardening (which the shipped units' own tests cover).
    static func service(overseerd arguments: [String], program: [String] = [Binaries.testChild], socket: String? = nil,
                        environment: [String: String] = [:], extra: [String] = []) throws -> String {
        let shipped = try lines(of: shippedService, section: "Service", keys: [
            "Type", "NotifyAccess", "ExecReload", "KillMode", "TimeoutStopSec", "Restart", "FileDescriptorStoreMax", "Environment",
        ])
        guard shipped.count == 8 else { throw HarnessError("unexpected lines in \(shippedService): \(shipped)") }
        let command = ([Binaries.overseerd] + arguments + ["--"] + program).map(quoted).joined(separator: " ")
        return """
        [Unit]
        Description=overseerd under test
        \(socket.map { "Requires=\($0)\nAfter=\($0)" } ?? "")
        [Service]
        \(shipped.joined(separator: "\n"))
        ExecStart=\(command)
        RuntimeDirectory=app
        \(environment.sorted { $0.key < $1.key }.map { "Environment=\(quoted("\($0.key)=\($0.value)"))" }.joined(separator: "\n"))
        \(extra.joined(separator: "\n"))

        """
    }

    /// A socket like the shipped one (its FileDescriptorName=, Accept= and Backlog=), on `listen`.
    static func socket(listen: String) throws -> String {
        let shipped = try lines(of: shippedSocket, section: "Socket", keys: ["FileDescriptorName", "Accept", "Backlog"])
        guard shipped.count == 3 else { throw HarnessError("unexpected lines in \(shippedSocket): \(shipped)") }
        return "[Socket]\nListenStream=\(listen)\n\(shipped.joined(separator: "\n"))\n"
    }

    /// The shipped units from `directory`, unchanged, with drop-ins as an operator
    /// would write them: the socket on 127.0.0.1:`port` (8080 may be taken on the
    /// shared network), the test child serving with --ready notify, and with
    /// `upgrades` the unit's commented-out OVERSEERD_FETCH=/srv/deploy/app.
    static func shipped(from directory: String, port: UInt16, upgrades: Bool) throws -> [String: String] {
        var service = "[Service]\nEnvironment=OTC_SERVE=1 OTC_READY_AFTER_MS=0 OVERSEERD_READY=notify\n"
        if upgrades { service += "Environment=OVERSEERD_FETCH=/srv/deploy/app\n" }
        return [
            "overseerd-example.service": try String(contentsOfFile: directory + "/overseerd-example.service", encoding: .utf8),
            "overseerd-example.socket": try String(contentsOfFile: directory + "/overseerd-example.socket", encoding: .utf8),
            "overseerd-example.socket.d/port.conf": "[Socket]\nListenStream=\nListenStream=127.0.0.1:\(port)\n",
            "overseerd-example.service.d/test.conf": service,
        ]
    }

    /// Installs what the shipped units name, in the instance's mount namespace only
    /// (the host's /usr and /srv are untouched): an overlay on /usr with the test
    /// child as /usr/local/lib/overseerd-example/app and /usr/bin/overseerd, the
    /// package's (`packageTree`, from dpkg -x) or else a copy of the built one
    /// (with overseerd-fetch in /usr/libexec/overseerd, where the package puts
    /// it); a tmpfs on /srv with an empty /srv/deploy.
    static func install(in systemd: SystemdInstance, scratch: ScratchDirectory, packageTree: String? = nil) throws {
        let upper = scratch.file("usr")
        let work = scratch.file("work")
        for directory in [upper + "/bin", upper + "/libexec/overseerd", upper + "/local/lib/overseerd-example", work] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        if packageTree == nil {
            // Copies, not links into the build directory: the shipped unit's PrivateTmp=
            // and ProtectHome= hide a build under /tmp or /root from the service.
            try FileManager.default.copyItem(atPath: Binaries.overseerd, toPath: upper + "/bin/overseerd")
            try FileManager.default.copyItem(atPath: Binaries.directory + "/overseerd-fetch",
                                             toPath: upper + "/libexec/overseerd/overseerd-fetch")
        }
        try FileManager.default.copyItem(atPath: Binaries.testChild, toPath: upper + "/local/lib/overseerd-example/app")
        let lower = (packageTree.map { [$0 + "/usr"] } ?? []) + ["/usr"]
        for command in [["mount", "-t", "overlay", "overlay", "-o", "lowerdir=\(lower.joined(separator: ":")),upperdir=\(upper),workdir=\(work)", "/usr"],
                        ["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/srv"],
                        ["mkdir", "/srv/deploy"]] {
            let result = try systemd.run(command)
            guard result.exit == .exited(0) else { throw HarnessError("\(command.joined(separator: " ")): \(result.stderr)") }
        }
    }

    /// The pid in "serving generation N (pid P, binary B)…".
    static func servingPID(_ status: String) -> String {
        guard let range = status.range(of: "(pid ") else { return "" }
        return String(status[range.upperBound...].prefix { $0.isNumber })
    }

    private static func quoted(_ argument: String) -> String {
        let escaped = argument.replacingOccurrences(of: "%", with: "%%")
        return escaped.contains(where: { $0 == " " || $0 == "\"" || $0 == "\\" || $0 == "$" || $0 == ";" })
            ? "\"" + escaped.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "$", with: "$$") + "\""
            : escaped
    }
}

/// Runs `body` with a request loop on `port` and returns what the loop saw; the
/// loop is stopped also when `body` throws.
func underLoad(port: UInt16, _ body: (LoadLoop) throws -> Void) throws -> LoadLoop.Result {
    let load = LoadLoop(port: port)
    do {
        try body(load)
    } catch {
        _ = load.stop()
        throw error
    }
    return load.stop()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
func freePort() throws -> UInt16 {
    let (fd, port) = try listenOnEphemeralPort()
    close(fd)
    return port
}

/// Polls `condition` every 20 ms until it holds; throws after `timeout` seconds.
func waitUntil(_ what: String, timeout: Double, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while try !condition() {
        guard Date() < deadline else { throw HarnessError("not \(what) within \(timeout)s") }
        usleep(20_000)
    }
}

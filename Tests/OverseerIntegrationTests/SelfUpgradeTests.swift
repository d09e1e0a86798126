#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// overseerd replaced by a package upgrade restarts itself without closing a
/// socket or touching the child; under systemd its sockets survive even a
/// restart of overseerd through the fd store.
@Suite struct SelfUpgradeTests {
    final class Installed {
        let scratch = ScratchDirectory()
        var binary: String { scratch.file("overseerd") }
        var socket: String { scratch.file("control.sock") }

        init() throws {
            try FileManager.default.copyItem(atPath: Binaries.overseerd, toPath: scratch.file("overseerd"))
        }

        /// What a package manager does: the new file written beside, renamed over the old.
        func upgrade() throws {
            let temporary = scratch.file(".overseerd.new")
            try FileManager.default.copyItem(atPath: Binaries.overseerd, toPath: temporary)
            guard rename(temporary, binary) == 0 else { throw HarnessError("rename: errno \(errno)") }
        }

        /// This overseerd serving the test child, its log in JSON unless `logFormat` says otherwise.
        func start(_ options: [String] = [], logFormat: LogFormat = .json) throws -> RunningProcess {
            try RunningProcess([binary, "--control-socket", socket, "--ready", "notify", "--log-format", logFormat.rawValue,
                                "-l", "127.0.0.1:0"] + options + ["--", Binaries.testChild],
                               environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0"])
        }

        func control(_ arguments: [String]) throws -> (ProcessExit, String, String) {
            try RunningProcess([Binaries.overseerd] + arguments + ["--control-socket", socket]).waitForExitWithOutput()
        }
    }

    @Test func reexecKeepsSocketsAndChildUnderLoad() throws {
        let installed = try Installed()
        let run = try installed.start()
        let port = try run.listenerPort()
        let child = try #require(try run.waitForEvent(.generationStarted, generation: 1).pid)
        try run.waitForEvent(.generationReady, generation: 1)
        let load = LoadLoop(port: port)
        try installed.upgrade()
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(run.pid)/exe").hasSuffix(" (deleted)"))

        let (exit, output, _) = try installed.control(["reexec"])
        #expect(exit == .exited(0))
        #expect(output.hasPrefix("re-executing \(installed.binary) (version "))
        let tookOver = try run.waitForEvent(.tookOver)
        #expect(tookOver.generation == 1 && tookOver.pid == child, "\(tookOver)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(run.pid)/exe") == installed.binary,
                "the same pid now runs the new file")
        load.waitUntilSucceeded(load.succeeded + 50)
        let result = load.stop()
        #expect(result.failures.isEmpty, "\(result.failures.prefix(3))")
        #expect(result.pids == [child], "one child served throughout")
        #expect(run.exit == nil)

        // The new image supervises as before: status, a restart, a stop.
        let (_, status, _) = try installed.control(["status"])
        #expect(status.contains("generation 1 serving: pid \(child)"))
        #expect(try installed.control(["restart", "--wait"]).0 == .exited(0))
        run.signal(SIGTERM)
        #expect(try run.waitForExit() == .killed(signal: SIGTERM))
    }

    @Test func reexecOnItsSignal() throws {
        let installed = try Installed()
        let run = try installed.start(["--reexec-signal", "USR1"])
        let child = try #require(try run.waitForEvent(.generationStarted, generation: 1).pid)
        try run.waitForEvent(.generationReady, generation: 1)
        run.signal(SIGUSR1)
        let tookOver = try run.waitForEvent(.tookOver)
        #expect(tookOver.generation == 1 && tookOver.pid == child, "\(tookOver)")
        #expect(run.lines(containing: "signal SIGUSR1", in: .stdout).isEmpty, "the re-exec signal is not passed on")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func checkConfigurationOnlyParsesTheCommandLine() throws {
        let good = try RunningProcess([Binaries.overseerd, "--check-configuration", "-l", "127.0.0.1:0", "--ready", "notify",
                                       "--", Binaries.testChild]).waitForExitWithOutput()
        #expect(good.0 == .exited(0))
        let version = try RunningProcess([Binaries.overseerd, "--version"]).waitForExitWithOutput().1
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(good.1 == "overseerd \(version): the command line is valid (takes over: metrics, output, binary-life, udp-flows, workers)\n")
        #expect(good.2.isEmpty, "nothing bound, nothing started: \(good.2)")
        let bad = try RunningProcess([Binaries.overseerd, "--check-configuration", "--ready", "sometimes", "--", "true"])
            .waitForExitWithOutput()
        #expect(bad.0 == .exited(64))
        #expect(bad.2.contains("bad readiness \"sometimes\""))
    }

    @Test func reexecIsRefusedWhenTheNewImageRejectsTheCommandLine() throws {
        let installed = try Installed()
        let run = try installed.start()
        let child = try #require(try run.waitForEvent(.generationStarted, generation: 1).pid)
        try run.waitForEvent(.generationReady, generation: 1)
        // A new version that runs (its --version works) but no longer takes an
        // option this overseerd was started with: exec'd into, it would exit.
        let temporary = installed.scratch.file(".overseerd.new")
        let script = """
            #!/bin/sh
            case "$1" in --version) echo 0.2.0; exit 0;; esac
            echo "overseerd: error: unknown option '--ready' — see overseerd --help" >&2
            exit 64

            """
        #expect(FileManager.default.createFile(atPath: temporary, contents: Data(script.utf8),
                                               attributes: [.posixPermissions: 0o755]))
        #expect(rename(temporary, installed.binary) == 0)

        let (exit, _, error) = try installed.control(["reexec"])
        #expect(exit == .exited(1))
        #expect(error.contains("--check-configuration ended with status 64"), "\(error)")
        try run.waitForEvent(.reexecFailed)
        // The new image's own reason reaches the log (its stderr is overseerd's, before the event).
        #expect(!run.lines(containing: "unknown option '--ready'").isEmpty, "\(run.stderrText)")
        #expect(run.exit == nil, "this overseerd goes on")
        #expect(Processes.isAlive(child), "and so does its child")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func reexecIsRefusedWhileARestartIsUnderWay() throws {
        let installed = try Installed()
        let scratchConfig = installed.scratch.file("child.conf")
        FileManager.default.createFile(atPath: scratchConfig, contents: Data("OTC_READY_AFTER_MS=0\n".utf8))
        let run = try RunningProcess([installed.binary, "--control-socket", installed.socket, "--ready", "notify",
                                      "--log-format", "json", "-l", "127.0.0.1:0", "--", Binaries.testChild],
                                     environment: ["OTC_SERVE": "1", "OTC_CONFIG": scratchConfig])
        try run.waitForEvent(.generationReady, generation: 1)
        FileManager.default.createFile(atPath: scratchConfig, contents: Data("OTC_READY_AFTER_MS=\n".utf8))
        run.signal(SIGUSR2)
        try run.waitForEvent(.generationStarted, generation: 2)
        let (exit, _, error) = try installed.control(["reexec"])
        #expect(exit == .exited(1))
        #expect(error.contains("overseerd is busy"))
        try run.waitForEvent(.reexecRefused)
        #expect(!run.hasLogged(.reexecStarted))
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// The new image's check takes a while (here a wrapper that sleeps before it
    /// runs overseerd); an upgrade poll that comes meanwhile must not be left
    /// behind by the exec: no helper the new image cannot reap, no staging file
    /// on disk. Before the fix the start check of the candidate renamed in during
    /// the check was still running at the exec, and its staging file stayed.
    @Test func reexecLeavesNoUpgradeWorkBehind() throws {
        let installed = try Installed()
        let deploy = installed.scratch.file("deploy")
        try FileManager.default.createDirectory(atPath: deploy, withIntermediateDirectories: true)
        let program = installed.scratch.file("app")
        try FileManager.default.copyItem(atPath: Binaries.testChild, toPath: program)
        let run = try RunningProcess([installed.binary, "--control-socket", installed.socket, "--ready", "notify",
                                      "--log-format", "json", "--fetch", deploy + "/app", "--check-timeout", "10s",
                                      "-l", "127.0.0.1:0", "--", program],
                                     environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0"])
        try run.waitForEvent(.generationReady, generation: 1)
        try run.waitForEvent(.upgradesConfigured)
        // The package upgrade: a new overseerd whose --check-configuration is slow.
        let marker = installed.scratch.file("checking")
        let real = installed.scratch.file("overseerd.real")
        try FileManager.default.copyItem(atPath: Binaries.overseerd, toPath: real)
        let wrapper = installed.scratch.file(".overseerd.new")
        try Data("#!/bin/sh\ncase \"$1\" in --check-configuration) touch \(marker); sleep 1;; esac\nexec \(real) \"$@\"\n".utf8)
            .write(to: URL(fileURLWithPath: wrapper))
        chmod(wrapper, 0o755)
        guard rename(wrapper, installed.binary) == 0 else { throw HarnessError("rename: errno \(errno)") }
        let reexec = try RunningProcess([Binaries.overseerd, "reexec", "--control-socket", installed.socket])
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: marker), Date() < deadline { usleep(5_000) }
        try #require(FileManager.default.fileExists(atPath: marker), "the new image's check did not start")
        // A candidate whose start check takes two seconds arrives during the check.
        let candidate = deploy + "/.app.tmp"
        try Data("#!/bin/sh\nsleep 2\nexit 1\n".utf8).write(to: URL(fileURLWithPath: candidate))
        chmod(candidate, 0o755)
        guard rename(candidate, deploy + "/app") == 0 else { throw HarnessError("rename: errno \(errno)") }
        let (exit, output, _) = try reexec.waitForExitWithOutput()
        #expect(exit == .exited(0), "\(output)")
        let tookOver = try run.waitForEvent(.tookOver)
        // The candidate is handled by the new image, from the start.
        let rejected = try run.waitForEvent(.upgradeRejected, after: tookOver.mark)
        #expect(rejected.message.contains("start check failed"), "\(rejected)")
        let staged = try FileManager.default.contentsOfDirectory(atPath: installed.scratch.path).filter { $0.contains("overseerd-staging") }
        #expect(staged.isEmpty, "staging files left behind: \(staged)")
        #expect(!run.hasLogged(.stagingCleaned), "the new image found nothing stale to remove")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func socketsGoToTheFdStoreAndAreTakenBackByName() throws {
        let scratch = ScratchDirectory()
        let address = scratch.file("notify")
        let receiver = try DatagramReceiver(address)
        let first = try RunningProcess.overseerd(["-l", "http=127.0.0.1:0", "--", Binaries.testChild],
                                                 environment: ["NOTIFY_SOCKET": address, "OTC_SERVE": "1"])
        let port = try first.listenerPort("http")
        let (message, fds) = try receiver.nextWithFDs()
        #expect(message == "FDSTORE=1\nFDNAME=http")
        let stored = try #require(fds.first)
        #expect(fds.count == 1)
        // overseerd and its child go away (systemctl restart); the stored socket stays open.
        first.signal(SIGTERM)
        _ = try first.waitForExit()
        let queued = LoadLoop(port: port, connections: 1)
        // systemd starts overseerd again with the stored socket as fd 3, named http.
        let second = try RunningProcess(
            ["/bin/sh", "-c", "LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http exec \"$0\" \"$@\"", Binaries.overseerd,
             "--control-socket", "none", "--log-format", "json", "-l", "http=127.0.0.1:\(port)", "--", Binaries.testChild],
            environment: ["OTC_SERVE": "1"], extraFDs: [stored])
        close(stored)
        // Which socket it took and why is what these lines tell the operator.
        let using = try second.waitForEvent(.listening)
        #expect(using.message == "using the inherited socket named http instead of binding 127.0.0.1:\(port)", "\(using)")
        let listening = try second.waitForEvent(.listening, occurrence: 2)
        #expect(listening.message == "listening on 127.0.0.1:\(port) as http (tcp, fd 3, inherited)", "\(listening)")
        let deadline = Date().addingTimeInterval(10)
        while queued.succeeded < 5, Date() < deadline { usleep(1000) }
        let result = queued.stop()
        #expect(result.failures.isEmpty, "connections made while no overseerd ran were queued, not refused: \(result.failures.prefix(3))")
        #expect(result.succeeded >= 5)
        second.signal(SIGTERM)
        _ = try second.waitForExit()
    }
}

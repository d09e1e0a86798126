#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// The restart signal starts a new generation on the same sockets; the old one
/// stops only once the new one is ready, and a new one that fails changes nothing.
@Suite struct GracefulRestartTests {
    /// A test child whose behaviour each generation reads from a file at its start.
    final class Setup {
        let scratch = ScratchDirectory()
        var configPath: String { scratch.file("child.conf") }

        func configure(_ settings: [String: String]) {
            let text = settings.map { "\($0.key)=\($0.value)\n" }.joined()
            FileManager.default.createFile(atPath: configPath, contents: Data(text.utf8))
        }

        func start(_ options: [String], program: String = Binaries.testChild,
                   environment: [String: String] = [:]) throws -> RunningProcess {
            try RunningProcess.overseerd(options + ["-l", "127.0.0.1:0", "--", program],
                                         environment: ["OTC_CONFIG": configPath, "OTC_SERVE": "1"].merging(environment) { $1 })
        }
    }

    static func pid(in line: String, after word: String) -> Int32? {
        let words = line.split(separator: " ")
        guard let index = words.firstIndex(where: { $0 == word }), index + 1 < words.count else { return nil }
        return Int32(words[index + 1].trimmingCharacters(in: CharacterSet(charactersIn: ",")))
    }

    @Test func oldGenerationStopsOnlyAfterTheNewOneIsReady() throws {
        let setup = Setup()
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        let run = try setup.start(["--ready", "notify"])
        let port = try run.listenerPort()
        let old = try #require(Self.pid(in: try run.waitForLine(containing: "generation 1 started"), after: "pid"))
        try run.waitForLine(containing: "generation 1 is ready")

        setup.configure(["OTC_READY_AFTER_MS": "700"])
        let signalled = Date()
        run.signal(SIGUSR2)
        let new = try #require(Self.pid(in: try run.waitForLine(containing: "generation 2 started"), after: "pid"))
        #expect(Processes.isAlive(old))
        #expect(try HTTPClient.get(port: port).status == 200, "someone serves while generation 2 gets ready")
        try run.waitForLine(containing: "signal SIGTERM pid \(old)", in: .stdout)
        #expect(Date().timeIntervalSince(signalled) >= 0.7, "the old child was asked to stop before the new one was ready")
        let stdout = run.stdoutText.split(separator: "\n")
        let readyIndex = try #require(stdout.firstIndex { $0.contains("child ready pid \(new)") })
        let stopIndex = try #require(stdout.firstIndex { $0.contains("signal SIGTERM pid \(old)") })
        #expect(readyIndex < stopIndex)
        try run.waitForLine(containing: "generation 1 stopped")
        #expect(try HTTPClient.get(port: port).pid == new)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    enum Failure: String, CaseIterable, Sendable {
        case exitsBeforeReady, neverReady, programMissing
    }

    @Test(arguments: Failure.allCases)
    func failedRestartLeavesTheOldGenerationServing(failure: Failure) throws {
        let setup = Setup()
        // A PATH directory whose program can be taken away between generations.
        let bin = setup.scratch.file("bin")
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: bin + "/child", withDestinationPath: Binaries.testChild)
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        let run = try setup.start(["--ready", "notify", "--ready-timeout", "1s", "--stop-timeout", "2s"], program: "child",
                                  environment: ["PATH": bin])
        let port = try run.listenerPort()
        let old = try #require(Self.pid(in: try run.waitForLine(containing: "generation 1 started"), after: "pid"))
        try run.waitForLine(containing: "generation 1 is ready")

        let expected: String
        switch failure {
        case .exitsBeforeReady:
            setup.configure(["OTC_EXIT_AFTER_MS": "100", "OTC_EXIT_CODE": "1", "OTC_SERVE": ""])
            expected = "restart failed: generation 2 exited with status 1 before ready; generation 1 keeps serving"
        case .neverReady:
            setup.configure(["OTC_SERVE": ""])
            expected = "restart failed: generation 2 was not ready after 1s; generation 1 keeps serving"
        case .programMissing:
            try FileManager.default.removeItem(atPath: bin + "/child")
            expected = "restart failed: generation 2 could not start: cannot run child: not found on PATH — give its full path or fix PATH; generation 1 keeps serving"
        }
        run.signal(SIGUSR2)
        try run.waitForLine(containing: expected)
        if failure == .neverReady {
            let failed = try #require(Self.pid(in: try run.waitForLine(containing: "generation 2 started"), after: "pid"))
            try run.waitForLine(containing: "signal SIGTERM pid \(failed)", in: .stdout)
            #expect(Processes.waitUntilGone(failed))
        }
        #expect(Processes.isAlive(old))
        #expect(run.lines(containing: "signal SIGTERM pid \(old)", in: .stdout).isEmpty)
        #expect(try HTTPClient.get(port: port).pid == old)

        // And the next restart works.
        if failure == .programMissing {
            try FileManager.default.createSymbolicLink(atPath: bin + "/child", withDestinationPath: Binaries.testChild)
        }
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        run.signal(SIGUSR2)
        try run.waitForLine(containing: "generation 3 is ready; stopping generation 1")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func oldGenerationIgnoringStopIsKilledAfterStopTimeout() throws {
        let setup = Setup()
        setup.configure(["OTC_IGNORE_TERM": "1"])
        let run = try setup.start(["--ready", "delay:100ms", "--stop-timeout", "500ms"])
        let port = try run.listenerPort()
        let old = try #require(Self.pid(in: try run.waitForLine(containing: "generation 1 started"), after: "pid"))
        try run.waitForLine(containing: "generation 1 is ready")
        setup.configure([:])
        run.signal(SIGUSR2)
        let new = try #require(Self.pid(in: try run.waitForLine(containing: "generation 2 started"), after: "pid"))
        try run.waitForLine(containing: "generation 1 did not stop within 500ms; sending SIGKILL")
        try run.waitForLine(containing: "generation 1 stopped (signal SIGKILL)")
        #expect(!Processes.isAlive(old))
        #expect(run.exit == nil, "overseerd keeps running")
        #expect(try HTTPClient.get(port: port).pid == new)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func burstOfRestartRequestsIsCoalesced() throws {
        let setup = Setup()
        setup.configure([:])
        let run = try setup.start(["--ready", "delay:400ms"])
        try run.waitForLine(containing: "generation 1 is ready")
        for _ in 0 ..< 20 {
            run.signal(SIGUSR2)
            usleep(2000)
        }
        try run.waitForLine(containing: "generation 2 is ready")
        // A queued restart starts in the step that makes generation 2 ready, so it is
        // logged before generation 1, stopped in that step, is reported stopped.
        try run.waitForLine(containing: "generation 1 stopped")
        if !run.lines(containing: "queued restart: starting generation 3").isEmpty {
            try run.waitForLine(containing: "generation 3 is ready")
            try run.waitForLine(containing: "generation 2 stopped")
        }
        // At rest: one more restart would have started with the last generation's
        // readiness, before its predecessor stopped.
        let started = run.lines(containing: " started: pid ")
        #expect(started.count >= 2 && started.count <= 3, "\(started)")
        #expect(Processes.children(of: run.pid).count == 1, "exactly one child at rest")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func noRequestFailsAcrossTenRestarts() throws {
        let setup = Setup()
        setup.configure(["OTC_READY_AFTER_MS": "20"])
        let run = try setup.start(["--ready", "notify"])
        let port = try run.listenerPort()
        try run.waitForLine(containing: "generation 1 is ready")
        let load = LoadLoop(port: port)
        for generation in 2 ... 11 {
            let before = load.succeeded
            run.signal(SIGUSR2)
            try run.waitForLine(containing: "generation \(generation) is ready; stopping generation \(generation - 1)")
            try run.waitForLine(containing: "generation \(generation - 1) stopped")
            // Let some requests reach the new generation before the next restart.
            load.waitUntilSucceeded(before + 5)
        }
        let result = load.stop()
        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        #expect(result.succeeded > 50)
        #expect(result.pids.count >= 5, "answers came from many generations: \(result.pids)")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func signalsDuringARestartGoToTheServingGeneration() throws {
        let setup = Setup()
        setup.configure(["OTC_READY_AFTER_MS": "0", "OTC_TERM_EXIT": "7"])
        let run = try setup.start(["--ready", "notify"])
        let old = try #require(Self.pid(in: try run.waitForLine(containing: "generation 1 started"), after: "pid"))
        try run.waitForLine(containing: "generation 1 is ready")
        setup.configure(["OTC_READY_AFTER_MS": "", "OTC_TERM_EXIT": "9"])
        run.signal(SIGUSR2)
        let new = try #require(Self.pid(in: try run.waitForLine(containing: "generation 2 started"), after: "pid"))
        try run.waitForLine(containing: "child started pid \(new)", in: .stdout)
        run.signal(SIGHUP)
        try run.waitForLine(containing: "signal SIGHUP pid \(old)", in: .stdout)
        run.signal(SIGTERM)
        try run.waitForLine(containing: "signal SIGTERM pid \(old)", in: .stdout)
        try run.waitForLine(containing: "signal SIGTERM pid \(new)", in: .stdout)
        #expect(try run.waitForExit() == .exited(7), "overseerd exits with the serving generation's status")
        #expect(run.lines(containing: "signal SIGHUP pid \(new)", in: .stdout).isEmpty)
    }

    @Test func servingChildExitingOnItsOwnEndsOverseerd() throws {
        let setup = Setup()
        setup.configure(["OTC_READY_AFTER_MS": "0", "OTC_EXIT_AFTER_MS": "300", "OTC_EXIT_CODE": "4"])
        let run = try setup.start(["--ready", "notify"])
        try run.waitForLine(containing: "generation 1 is ready")
        #expect(try run.waitForExit() == .exited(4))
    }

    @Test func gunicornRestartsUnderLoadWithoutErrors() throws {
        let gunicorn = "/usr/bin/gunicorn"
        try #require(FileManager.default.isExecutableFile(atPath: gunicorn), "install the Debian package gunicorn")
        let setup = Setup()
        let app = """
            import os
            def app(environ, start_response):
                start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getppid()))])
                return [b"hello from gunicorn\\n"]
            """
        FileManager.default.createFile(atPath: setup.scratch.file("wsgi.py"), contents: Data(app.utf8))
        let run = try RunningProcess.overseerd(
            ["--ready", "notify", "-l", "127.0.0.1:0", "--", gunicorn, "--workers", "2", "--graceful-timeout", "10",
             "--chdir", setup.scratch.path, "wsgi:app"])
        let port = try run.listenerPort()
        try run.waitForLine(containing: "generation 1 is ready")
        let load = LoadLoop(port: port)
        for generation in 2 ... 4 {
            run.signal(SIGUSR2)
            try run.waitForLine(containing: "generation \(generation) is ready; stopping generation \(generation - 1)")
            try run.waitForLine(containing: "generation \(generation - 1) stopped", timeout: 30)
        }
        let deadline = Date().addingTimeInterval(5)
        while load.succeeded < 20, Date() < deadline { usleep(1000) }
        let result = load.stop()
        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        #expect(result.succeeded >= 20)
        run.signal(SIGTERM)
        _ = try run.waitForExit(timeout: 30)
    }

    /// After 5 s of quiet overseerd drops its code pages from its resident set
    /// (`CodePages`); the next restart faults back what it needs and works as before.
    @Test func restartAfterTheCodePagesWereReleased() throws {
        let setup = Setup()
        setup.configure(["OTC_READY_AFTER_MS": "0"])
        let run = try setup.start(["--ready", "notify"])
        let port = try run.listenerPort()
        try run.waitForLine(containing: "generation 1 is ready")
        let resident = try #require(Self.residentCode(of: run.pid))
        var released = resident
        let deadline = Date().addingTimeInterval(20)
        while released * 2 > resident, Date() < deadline {
            usleep(100_000)
            released = try #require(Self.residentCode(of: run.pid))
        }
        #expect(released * 2 <= resident, "overseerd's code: \(resident) kB resident when ready, \(released) kB after the quiet")
        run.signal(SIGUSR2)
        try run.waitForLine(containing: "generation 2 is ready; stopping generation 1")
        #expect(try HTTPClient.get(port: port).status == 200)
        run.signal(SIGTERM)
        #expect(try run.waitForExit() == .killed(signal: SIGTERM))
    }

    /// kB of overseerd's own executable code resident in `pid` (/proc/PID/smaps).
    static func residentCode(of pid: Int32) -> Int? {
        guard let smaps = try? String(contentsOfFile: "/proc/\(pid)/smaps", encoding: .utf8) else { return nil }
        var total = 0
        var inCode = false
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5 {
                inCode = fields.count >= 6 && fields[1] == "r-xp" && fields[5].hasSuffix("/overseerd")
            } else if inCode, fields.first == "Rss:", fields.count >= 2, let value = Int(fields[1]) {
                total += value
            }
        }
        return total
    }
}

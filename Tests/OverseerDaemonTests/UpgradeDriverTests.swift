import Foundation
import Logging
import OverseerCore
@testable import OverseerDaemon
import OverseerSystem
import OverseerTestSupport
import Testing

/// The upgrade driver between the real event loop and inotify on one side and
/// stand-ins for the helpers and the daemon on the other: no process runs.
@Suite struct UpgradeDriverTests {
    /// Records the helpers the driver asks for; the test ends them.
    final class Helpers: HelperStarting {
        var requests: [(request: HelperRequest, completion: (HelperResult) -> Void)] = []
        var failStarting = false
        var running: Int { requests.count }

        func start(_ request: HelperRequest, completion: @escaping (HelperResult) -> Void) throws {
            if failStarting { throw SystemError("fork", errno: .resourceTemporarilyUnavailable) }
            requests.append((request, completion))
        }

        func finish(_ result: HelperResult) {
            requests.removeFirst().completion(result)
        }
    }

    final class Host: UpgradeHost {
        let program: String
        var restarts: [String] = []
        var remembered: [String: String] = [:]
        /// The real machine, fed at once (the daemon queues the events; nothing else is fed here).
        var binaryLife = BinaryLife(probation: .zero)
        var lifeActions: [BinaryLife.Action] = []
        var servingBinary: String?
        init(program: String) { self.program = program }
        func start() { lifeActions += binaryLife.handle(.started(identified: identify(program))) }
        func binaryLifeEvent(_ event: BinaryLife.Event) { lifeActions += binaryLife.handle(event) }
        var stateFailure: String?
        func whenStateWritten(_ work: @escaping (String?) -> Void) { work(stateFailure) }
        func requestRestart(reason: String) { restarts.append(reason) }
        func identify(_ path: String) -> String { (try? BinaryIdentity.sha256(ofFileAt: path)) ?? "" }
        func remember(binaryID: String, of path: String) { remembered[path] = binaryID }
        func upgradeStatusChanged() {}
        func resolvedProgram() throws -> String { program }
        var inheritableEnvironment: [String] { [] }
    }

    final class Fixture {
        let scratch = ScratchDirectory()
        let reactor: Reactor
        let helpers = Helpers()
        let host: Host
        let logger: Logger
        let records: LogRecords
        var driver: UpgradeDriver!
        var program: String { scratch.file("app") }
        var deployPath: String { scratch.file("deploy/app") }

        init(_ configure: (inout UpgradeSettings) -> Void = { _ in }) throws {
            reactor = try Reactor()
            host = Host(program: scratch.file("app"))
            (logger, records) = collectingLogger()
            try FileManager.default.createDirectory(atPath: scratch.file("deploy"), withIntermediateDirectories: true)
            try Data("v1".utf8).write(to: URL(fileURLWithPath: program))
            var settings = UpgradeSettings(source: .file(path: deployPath))
            settings.interval = .seconds(3600)
            configure(&settings)
            host.start()
            driver = try UpgradeDriver(plan: .init(settings), loop: reactor, helpers: helpers, host: host, logger: logger)
        }

        func deploy(_ text: String) throws {
            let temporary = scratch.file("deploy/.tmp")
            try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
            try #require(rename(temporary, deployPath) == 0)
        }

        var installed: String { (try? String(contentsOfFile: program, encoding: .utf8)) ?? "" }
        var staged: [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: scratch.path)) ?? []).filter { $0.contains("overseerd-staging") }
        }
    }

    static func token(in request: HelperRequest) throws -> String {
        let entry = try #require(request.environment.first { $0.hasPrefix("OVERSEER_CHECK_TOKEN=") })
        return String(entry.dropFirst("OVERSEER_CHECK_TOKEN=".count))
    }

    @Test func candidatePassingItsCheckIsInstalledAndRestartedInto() throws {
        let fixture = try Fixture()
        try fixture.deploy("v2")
        try run(fixture.reactor) { fixture.helpers.running == 1 }
        let request = fixture.helpers.requests[0].request
        #expect(request.label == "start check")
        fixture.helpers.finish(HelperResult(exit: .exited(0), output: try Self.token(in: request) + "\n", timedOut: false))
        try run(fixture.reactor) { !fixture.host.restarts.isEmpty }
        #expect(fixture.installed == "v2")
        #expect((try? String(contentsOfFile: fixture.program + ".previous", encoding: .utf8)) == "v1")
        // The hash the intake computed is handed on: the next spawn need not hash again.
        #expect(fixture.host.remembered[fixture.program] == fixture.host.identify(fixture.program))
        #expect(fixture.driver.expectedBinary == fixture.host.identify(fixture.program))
        // The trial was recorded (and persisted) before the file moved.
        #expect(fixture.host.binaryLife.isOnTrial)
        #expect(fixture.host.binaryLife.trialBinary == fixture.host.identify(fixture.program))
        #expect(fixture.host.lifeActions.contains(.persist))
        // The new generation failed: the cycle ends; the rollback is BinaryLife's (and the Supervisor's to carry out).
        fixture.driver.restartFinished(binary: fixture.host.identify(fixture.program), succeeded: false, reason: "exited")
        #expect(fixture.driver.isIdle)
        #expect(fixture.records.count(.error) == 1)
    }

    /// Issue 22 (red team): a trial that cannot be recorded (full or read-only
    /// state directory) is no trial: nothing is installed, the staged file waits.
    @Test func nothingIsInstalledWhileItsTrialCannotBeRecorded() throws {
        let fixture = try Fixture()
        fixture.host.stateFailure = "no space left on device"
        try fixture.deploy("v2")
        try run(fixture.reactor) { fixture.helpers.running == 1 }
        let request = fixture.helpers.requests[0].request
        fixture.helpers.finish(HelperResult(exit: .exited(0), output: try Self.token(in: request) + "\n", timedOut: false))
        try run(fixture.reactor) { fixture.driver.pendingInstall != nil }
        #expect(fixture.installed == "v1")
        #expect(fixture.host.restarts.isEmpty)
        #expect(!fixture.host.binaryLife.isOnTrial)
        #expect(fixture.driver.pendingInstall?.contains("cannot be recorded") == true)
    }

    /// A helper killed at its deadline, or one that could not even start, is a
    /// failed step: the candidate is rejected, nothing is installed, nothing stays staged.
    @Test(arguments: ["timed out", "cannot start"])
    func checkThatCannotAnswerRejectsTheCandidate(failure: String) throws {
        let fixture = try Fixture()
        fixture.helpers.failStarting = failure == "cannot start"
        try fixture.deploy("v2")
        if failure == "timed out" {
            try run(fixture.reactor) { fixture.helpers.running == 1 }
            let token = try Self.token(in: fixture.helpers.requests[0].request)
            // Even with the token printed: killed at its deadline is a failure.
            fixture.helpers.finish(HelperResult(exit: .killed(signal: 9), output: token + "\n", timedOut: true))
        }
        try run(fixture.reactor) { fixture.driver.isIdle && fixture.records.count(.error) == 1 }
        #expect(fixture.installed == "v1")
        #expect(fixture.staged.isEmpty)
        #expect(fixture.host.restarts.isEmpty)
        #expect(fixture.driver.rejected.count == 1)
    }

    /// A FIFO renamed onto the watched path is not opened for waiting: the
    /// loop goes on, the poll fails with one warning, and a real file after it is taken.
    @Test func fifoAtTheWatchedPathDoesNotBlock() throws {
        let fixture = try Fixture()
        let fifo = fixture.scratch.file("deploy/.fifo")
        try #require(mkfifo(fifo, 0o600) == 0)
        try #require(rename(fifo, fixture.deployPath) == 0)
        try run(fixture.reactor) { fixture.records.entries.contains { $0.level == .warning && $0.message.contains("FIFO") } }
        #expect(fixture.helpers.running == 0)
        try fixture.deploy("v2")
        try run(fixture.reactor) { fixture.helpers.running == 1 }
    }
}

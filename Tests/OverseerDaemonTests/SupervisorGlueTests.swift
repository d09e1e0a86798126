import Foundation
import Glibc
import Logging
import OverseerCore
@testable import OverseerDaemon
@testable import OverseerSystem
import OverseerTestSupport
import Testing

/// The Supervisor's glue, assembled from `SupervisorParts` with two seams
/// replaced: the spawn records each request (and starts `sleep` in place of the
/// program), the exit records the status instead of ending the test. The loop,
/// the state directory, the rollback's thread and the files are real.
@Suite struct SupervisorGlueTests {
    final class Seams {
        var spawned: [(request: ChildProcess.Request, programText: String)] = []
        var processes: [ChildProcess] = []
        var exits: [ProcessExit] = []
        var failSpawn: ChildProcess.SpawnError?
        let program: String

        init(program: String) { self.program = program }

        func parts(_ logger: Logger) throws -> SupervisorParts {
            try SupervisorParts.with(environment: ProcessEnvironment(entries: []), logger: logger, spawn: { [unowned self] (request) throws(ChildProcess.SpawnError) in
                spawned.append((request, (try? String(contentsOfFile: program, encoding: .utf8)) ?? ""))
                if let failSpawn { throw failSpawn }
                var stand = request
                stand.path = "/bin/sleep"
                stand.arguments = ["sleep", "60"]
                let process = try ChildProcess.spawn(stand)
                processes.append(process)
                return process
            }, exit: { [unowned self] status in exits.append(status) })
        }

        deinit {
            for process in processes where process.isAlive { process.signal(SIGKILL) }
        }
    }

    static func turn(_ supervisor: Supervisor, until done: () -> Bool, seconds: Double = 20) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while !done() {
            guard Date() < deadline, !supervisor.hasExited else { throw HarnessError("the glue did not get there in \(seconds) s") }
            supervisor.turn()
        }
    }

    @Test func aFirstSpawnThatFailsEndsOverseerdWithItsCode() throws {
        let scratch = ScratchDirectory()
        let seams = Seams(program: "/bin/true")
        seams.failSpawn = ChildProcess.SpawnError(stage: "exec", errno: .noSuchFileOrDirectory, path: "/bin/true")
        var configuration = Configuration(program: "/bin/true")
        configuration.controlSocket = nil
        configuration.stateDirectory = scratch.file("state")
        let (logger, _) = collectingLogger()
        let supervisor = try Supervisor(configuration: configuration, environment: ProcessEnvironment(entries: []), listeners: [],
                                        upgradePlan: nil, logger: logger, parts: try seams.parts(logger))
        supervisor.start()
        #expect(seams.spawned.count == 1)
        #expect(seams.exits == [.exited(127)], "the spawn's exit code, as for a program that is missing")
        #expect(supervisor.hasExited)
    }

    /// Issue 22: a generation on the binary on trial crashes; the rejection is on
    /// disk and the last good binary is back in place before the next spawn.
    @Test func aCrashOnTrialPutsTheLastGoodBinaryBackBeforeTheNextSpawn() throws {
        let scratch = ScratchDirectory()
        let program = scratch.file("app")
        try Data("B".utf8).write(to: URL(fileURLWithPath: program))
        try Data("A".utf8).write(to: URL(fileURLWithPath: program + ".previous"))
        #expect(chmod(program, 0o755) == 0 && chmod(program + ".previous", 0o755) == 0)
        let a = try BinaryIdentity.sha256(ofFileAt: program + ".previous")
        let b = try BinaryIdentity.sha256(ofFileAt: program)
        let state = scratch.file("state")
        #expect(mkdir(state, 0o700) == 0)
        let record = BinaryLife.Record(program: Installer.target(of: program), installed: .init(sha256: b), onTrial: true,
                                       lastGood: .init(sha256: a))
        let stateFile = state + "/" + BinaryLife.Record.fileName(for: Installer.target(of: program))
        try Data(record.encoded.utf8).write(to: URL(fileURLWithPath: stateFile))
        #expect(chmod(stateFile, 0o600) == 0)

        var configuration = Configuration(program: program)
        configuration.controlSocket = nil
        configuration.readiness = .delay(.milliseconds(20))
        configuration.stopTimeout = .seconds(2)
        configuration.stateDirectory = state
        var settings = UpgradeSettings(source: .file(path: scratch.file("deploy/app")))
        settings.interval = .seconds(3600)
        settings.probation = .seconds(30)
        settings.stateDirectory = state
        configuration.upgrade = settings
        let seams = Seams(program: program)
        let (logger, records) = collectingLogger()
        let supervisor = try Supervisor(configuration: configuration, environment: ProcessEnvironment(entries: []), listeners: [],
                                        upgradePlan: .init(settings), logger: logger, parts: try seams.parts(logger))
        supervisor.start()
        // Generation 1 runs B, on trial, and serves.
        do {
            try Self.turn(supervisor) { supervisor.supervision.binaryLife.trialServing }
        } catch {
            Issue.record("\(seams.exits) \(records.entries.map(\.message).joined(separator: "\n"))")
            throw error
        }
        #expect(seams.spawned.map(\.programText) == ["B"])
        seams.processes[0].signal(SIGKILL)
        try Self.turn(supervisor) { seams.spawned.count == 2 }
        #expect(seams.spawned[1].programText == "A", "the last good binary was in place before the next spawn")
        #expect(supervisor.supervision.binaryLife.rejected == [b])
        #expect(supervisor.rollbacks == 1)
        try Self.turn(supervisor) { !(supervisor.binaryLifeStore?.isBusy ?? false) }
        let kept = try BinaryLife.Record(parsing: try String(contentsOfFile: stateFile, encoding: .utf8))
        #expect(kept.rejected == [b] && kept.installed?.sha256 == a && !kept.onTrial, "\(kept)")
        #expect(seams.exits.isEmpty, "overseerd does not exit")
        supervisor.exitNow(.exited(0))
        #expect(seams.exits == [.exited(0)])
    }
}

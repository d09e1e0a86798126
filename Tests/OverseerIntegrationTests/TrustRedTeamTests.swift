import Foundation
import Glibc
import OverseerCore
import OverseerTestSupport
import Testing

/// Red team of trusted rollouts (issue 24) on the merged build: what an
/// unlucky operator's state directory does to replay protection.
@Suite(.serialized) struct TrustRedTeamTests {
    /// The raised sequence cannot be written (its file's place is taken by a
    /// directory, as a full or broken state directory would refuse it): the
    /// manifest is not followed, since after a restart overseerd would know only
    /// the older sequence and a replay could undo the install. Once the write can
    /// land, the same manifest is taken at the next poll.
    @Test func aSequenceThatCannotBeWrittenInstallsNothing() throws {
        let host = try TrustedRolloutTests.Host(s3: false)
        let deployment = host.deployment
        let state = deployment.scratch.file("state")
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let programs = Set([deployment.program, URL(fileURLWithPath: deployment.program).resolvingSymlinksInPath().path])
        let blockers = programs.map { "\(state)/\(ManifestTrust.Record.fileName(for: $0))" }
        for path in blockers { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false) }
        let run = try host.start()

        let mark = run.logMark
        let v2 = try host.publish("2.0.0", sequence: 1, signers: [0, 1])
        _ = try TrustedRolloutTests.wait(run, .manifestRefused, after: mark, containing: "cannot be kept in the state directory", timeout: 20)
        #expect(deployment.installed() == deployment.original)
        #expect(!run.hasLogged(.upgradeFetched) && !run.hasLogged(.upgradeInstalled))

        for path in blockers { try FileManager.default.removeItem(atPath: path) }
        try run.waitForEvent(.upgradeSucceeded, binary: try UpgradeTests.sha256(v2.binary), timeout: 20)
        let written = blockers.compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }
        #expect(written.contains { $0.contains("\nsequence 1 ") }, "\(written)")
        try host.stop()
    }

    /// `forget-keys` (the way back from rotated keys, say after they leaked) whose
    /// state cannot be written: the answer said "forgotten" and exit 0, and a
    /// restart later trusted the rotated keys again. It now fails (exit 1),
    /// saying the keys are forgotten only until overseerd restarts.
    @Test func forgetKeysThatCannotBeWrittenSaysSo() throws {
        let host = try TrustedRolloutTests.Host(s3: false)
        let deployment = host.deployment
        let run = try host.start()
        let v2 = try host.publish("2.0.0", sequence: 1, signers: [0, 1, 3], keys: [3])
        // Its release is fetched only once the rotation is on disk.
        try run.waitForEvent(.upgradeSucceeded, binary: try UpgradeTests.sha256(v2.binary), timeout: 20)
        let state = deployment.scratch.file("state")
        let path = try #require(Set([deployment.program, URL(fileURLWithPath: deployment.program).resolvingSymlinksInPath().path])
            .map { "\(state)/\(ManifestTrust.Record.fileName(for: $0))" }
            .first { (try? String(contentsOfFile: $0, encoding: .utf8))?.contains("\nkeys 1 ") == true })
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        let (exit, _, answer) = try HostileInputTests.control(host.socket, ["forget-keys"])
        #expect(exit == .exited(1), "\(answer)")
        #expect(answer.contains("but only until overseerd restarts"), "\(answer)")
        try host.stop()
    }
}

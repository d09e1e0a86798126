#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// Upgrades from a watched file: a new binary is verified, installed atomically
/// and restarted into; a bad one never replaces the installed binary nor
/// disturbs the serving child.
@Suite struct UpgradeTests {
    final class Deployment {
        let scratch = ScratchDirectory()
        var program: String { scratch.file("app") }
        var deployPath: String { scratch.file("deploy/app") }
        var configPath: String { scratch.file("child.conf") }
        let original: Data

        init(programPath: String? = nil) throws {
            try FileManager.default.createDirectory(atPath: scratch.file("deploy"), withIntermediateDirectories: true)
            original = try Data(contentsOf: URL(fileURLWithPath: Binaries.testChild))
            try write(original, to: programPath ?? program)
            FileManager.default.createFile(atPath: configPath, contents: Data())
        }

        /// The test child with bytes appended: a different file that runs the same.
        func variant(_ tag: String) -> Data { original + Data("\n#\(tag)\n".utf8) }

        func write(_ data: Data, to path: String, mode: Int = 0o755) throws {
            try data.write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        }

        /// What a deploy tool does: write beside, then rename into place.
        func deploy(_ data: Data, signature: String? = nil) throws {
            if let signature {
                try Data(signature.utf8).write(to: URL(fileURLWithPath: deployPath + ".minisig"))
            }
            let temporary = scratch.file("deploy/.app.tmp")
            try write(data, to: temporary)
            guard rename(temporary, deployPath) == 0 else { throw HarnessError("rename failed: errno \(errno)") }
        }

        func configureNextGeneration(_ text: String) {
            FileManager.default.createFile(atPath: configPath, contents: Data(text.utf8))
        }

        /// overseerd upgrading the program from `deployPath`, its first generation
        /// ready and upgrades configured; returns it, its port and the first
        /// generation's pid. Its log is JSON (wait with `waitForEvent`) unless
        /// `logFormat` says otherwise.
        func start(_ options: [String], program: String? = nil,
                   logFormat: LogFormat = .json) throws -> (RunningProcess, UInt16, Int32) {
            let run = try RunningProcess.overseerd(
                ["--ready", "notify", "--log-level", "debug", "--log-format", logFormat.rawValue, "--fetch", deployPath,
                 "-l", "127.0.0.1:0"] + options + ["--", program ?? self.program],
                environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0", "OTC_CONFIG": configPath])
            let port = try run.listenerPort()
            guard logFormat == .json else {
                let line = try run.waitForLine(containing: "generation 1 started")
                try run.waitForLine(containing: "generation 1 is ready")
                try run.waitForLine(containing: "upgrades from")
                return (run, port, GracefulRestartTests.pid(in: line, after: "pid") ?? -1)
            }
            let started = try run.waitForEvent(.generationStarted, generation: 1)
            try run.waitForEvent(.generationReady, generation: 1)
            try run.waitForEvent(.upgradesConfigured)
            return (run, port, started.pid ?? -1)
        }

        func installed(_ path: String? = nil) -> Data? { try? Data(contentsOf: URL(fileURLWithPath: path ?? program)) }
    }

    static func sha256(_ data: Data) throws -> String {
        let path = NSTemporaryDirectory() + "overseerd-sha-\(UInt64.random(in: 0 ... .max))"
        try data.write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        return try sha256sum(path)
    }

    @Test func atomicRenameUpgradesAndRestarts() throws {
        let deployment = try Deployment()
        let (run, port, old) = try deployment.start([])
        let new = deployment.variant("v2")
        let hash = try Self.sha256(new)
        try deployment.deploy(new)
        try run.waitForEvent(.upgradeSucceeded, binary: hash)
        let started = try run.waitForEvent(.generationStarted, generation: 2)
        #expect(started.binary == hash)
        #expect(deployment.installed() == new)
        #expect(deployment.installed(deployment.program + ".previous") == deployment.original)
        try run.waitForEvent(.generationStopped, generation: 1)
        let answer = try HTTPClient.get(port: port)
        #expect(answer.pid != old && answer.pid == started.pid)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    struct Rejection: Sendable, CustomTestStringConvertible {
        let name: String
        let options: [String]
        let binary: @Sendable (Data) -> Data
        let reason: String
        var testDescription: String { name }
    }

    static let rejections: [Rejection] = [
        Rejection(name: "wrong token", options: [], binary: { _ in Data("#!/bin/sh\necho wrong-token\n".utf8) },
                  reason: "start check failed for"),
        Rejection(name: "no output", options: [], binary: { _ in Data("#!/bin/sh\nexit 0\n".utf8) },
                  reason: "it did not print OVERSEER_CHECK_TOKEN on stdout (got nothing)"),
        Rejection(name: "exit 1", options: [], binary: { _ in Data("#!/bin/sh\necho \"$OVERSEER_CHECK_TOKEN\"\nexit 1\n".utf8) },
                  reason: "exited with status 1"),
        Rejection(name: "stderr only", options: [], binary: { _ in Data("#!/bin/sh\necho \"$OVERSEER_CHECK_TOKEN\" >&2\n".utf8) },
                  reason: "did not print OVERSEER_CHECK_TOKEN on stdout"),
        Rejection(name: "hang", options: ["--check-timeout", "500ms"], binary: { _ in Data("#!/bin/sh\nexec sleep 30\n".utf8) },
                  reason: "start check failed for"),
        Rejection(name: "garbage", options: [], binary: { _ in Data((0 ..< 4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }) },
                  reason: "exec format error"),
        Rejection(name: "wrong sha256", options: ["--sha256", String(repeating: "0", count: 64)], binary: { $0 + Data("x".utf8) },
                  reason: "checksum failed for"),
        Rejection(name: "pre-upgrade fails", options: ["--pre-upgrade", "test -e /nonexistent/marker"], binary: { $0 + Data("y".utf8) },
                  reason: "pre-upgrade command failed for"),
        Rejection(name: "unsigned", options: ["--minisign-key", "RWSC54L037GNVeoOvmeRJFsEM2xY3v2NN3H/u9kRi6Be0U/4qVcsB4w8"],
                  binary: { $0 + Data("z".utf8) }, reason: "no .minisig signature beside the binary"),
    ]

    @Test(arguments: rejections)
    func rejectedBinaryChangesNothing(rejection: Rejection) throws {
        let deployment = try Deployment()
        let (run, port, old) = try deployment.start(rejection.options)
        let candidate = rejection.binary(deployment.original)
        try deployment.deploy(candidate)
        // What the line says is the point here: why, and that nothing changed.
        let rejected = try run.waitForEvent(.upgradeRejected)
        #expect(rejected.binary == (try Self.sha256(candidate)))
        #expect(rejected.message.contains(rejection.reason), "\(rejected)")
        #expect(rejected.message.hasSuffix("the installed binary stays"))
        #expect(deployment.installed() == deployment.original, "the installed binary is byte-identical")
        #expect(try HTTPClient.get(port: port).pid == old, "the serving child is the same process")
        #expect(!run.hasLogged(.generationStarted, generation: 2))
        #expect(run.exit == nil)
        // No staging file is left beside the program.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: deployment.scratch.path).filter { $0.contains("staging") }
        #expect(leftovers.isEmpty, "\(leftovers)")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func failingNewGenerationIsRolledBackAndNotRetried() throws {
        let deployment = try Deployment()
        let (run, port, old) = try deployment.start(["--ready-timeout", "5s"])
        let bad = deployment.variant("crashes")
        let hash = try Self.sha256(bad)
        // It answers the start check (first thing in main), then exits before it is ready.
        deployment.configureNextGeneration("OTC_READY_AFTER_MS=\nOTC_EXIT_AFTER_MS=50\nOTC_EXIT_CODE=3\n")
        try deployment.deploy(bad)
        let failed = try run.waitForEvent(.restartFailed, generation: 2)
        #expect(failed.message == "restart failed: generation 2 exited with status 3 before ready; generation 1 keeps serving",
                "\(failed)")
        try run.waitForEvent(.upgradeFailed, binary: hash)
        let originalHash = try Self.sha256(deployment.original)
        try run.waitForEvent(.upgradeRolledBack, binary: originalHash)
        #expect(deployment.installed() == deployment.original)
        #expect(try HTTPClient.get(port: port).pid == old)
        // The same bytes deployed again are recognised and skipped (neither fetched as new nor started).
        let mark = run.logMark
        try deployment.deploy(bad)
        try run.waitForEvent(.upgradeUnchanged, binary: hash, after: mark)
        #expect(!run.hasLogged(.upgradeFetched, after: mark))
        #expect(!run.hasLogged(.generationStarted, generation: 3))
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func noRestartInstallsForTheNextRestart() throws {
        let deployment = try Deployment()
        let (run, _, _) = try deployment.start(["--no-restart"])
        let new = deployment.variant("later")
        let hash = try Self.sha256(new)
        try deployment.deploy(new)
        let installed = try run.waitForEvent(.upgradeInstalled, binary: hash)
        #expect(installed.message.hasSuffix("it runs from the next restart (--no-restart)"), "\(installed)")
        #expect(deployment.installed() == new)
        #expect(!run.hasLogged(.generationStarted, generation: 2))
        #expect(!run.hasLogged(.restartStarted))
        run.signal(SIGUSR2)
        let started = try run.waitForEvent(.generationStarted, generation: 2)
        #expect(started.binary == hash)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func symlinkedProgramKeepsItsLink() throws {
        let deployment = try Deployment()
        let release = deployment.scratch.file("releases/app-1")
        try FileManager.default.createDirectory(atPath: deployment.scratch.file("releases"), withIntermediateDirectories: true)
        try deployment.write(deployment.original, to: release)
        let link = deployment.scratch.file("current")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: release)
        let (run, _, _) = try deployment.start([], program: link)
        let new = deployment.variant("linked")
        try deployment.deploy(new)
        try run.waitForEvent(.upgradeSucceeded, binary: try Self.sha256(new))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == release)
        #expect(deployment.installed(release) == new)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func signedUpgradesAndDowngradeProtection() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/minisign"), "install the Debian package minisign")
        let deployment = try Deployment()
        let keys = deployment.scratch.file("key")
        let other = deployment.scratch.file("other")
        for name in [keys, other] {
            #expect(try RunningProcess(["/usr/bin/minisign", "-G", "-W", "-p", name + ".pub", "-s", name + ".sec"]).waitForExit() == .exited(0))
        }
        func signature(of data: Data, key: String, timestamp: Int) throws -> String {
            let file = deployment.scratch.file("tosign-\(UInt32.random(in: 0 ... .max))")
            try data.write(to: URL(fileURLWithPath: file))
            let run = try RunningProcess(["/usr/bin/minisign", "-S", "-s", key + ".sec", "-m", file, "-t", "timestamp:\(timestamp)\tfile:app"])
            #expect(try run.waitForExit() == .exited(0))
            return try String(contentsOfFile: file + ".minisig", encoding: .utf8)
        }
        let now = Int(Date().timeIntervalSince1970)
        let (run, _, _) = try deployment.start(["--minisign-key", keys + ".pub"])

        // Signed by another key: rejected.
        // Each rejection says why, for the person reading it: that text is checked once each.
        let a = deployment.variant("a")
        try deployment.deploy(a, signature: try signature(of: a, key: other, timestamp: now + 100))
        let otherKey = try run.waitForEvent(.upgradeRejected, binary: try Self.sha256(a))
        #expect(otherKey.message.contains("signed by another key"), "\(otherKey)")
        // A valid signature for other bytes (tampered file): rejected.
        let b = deployment.variant("b")
        try deployment.deploy(b, signature: try signature(of: a, key: keys, timestamp: now + 100))
        let tampered = try run.waitForEvent(.upgradeRejected, binary: try Self.sha256(b))
        #expect(tampered.message.contains("the signature does not match the file"), "\(tampered)")
        #expect(deployment.installed() == deployment.original)
        // Properly signed and newer: installed.
        let c = deployment.variant("c")
        try deployment.deploy(c, signature: try signature(of: c, key: keys, timestamp: now + 2000))
        try run.waitForEvent(.upgradeSucceeded, binary: try Self.sha256(c))
        #expect(deployment.installed() == c)
        // An older signed binary replayed: rejected as a downgrade.
        let d = deployment.variant("d")
        try deployment.deploy(d, signature: try signature(of: d, key: keys, timestamp: now + 1000))
        let replayed = try run.waitForEvent(.upgradeRejected, binary: try Self.sha256(d))
        #expect(replayed.message.contains("not after the installed binary"), "\(replayed)")
        #expect(deployment.installed() == c)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

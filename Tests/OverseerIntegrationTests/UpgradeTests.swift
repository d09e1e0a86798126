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

        func start(_ options: [String], program: String? = nil) throws -> (RunningProcess, UInt16, Int32) {
            let run = try RunningProcess.overseerd(
                ["--ready", "notify", "--log-level", "debug", "--fetch", deployPath, "-l", "127.0.0.1:0"] + options
                    + ["--", program ?? self.program],
                environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0", "OTC_CONFIG": configPath])
            let port = try run.listenerPort()
            let line = try run.waitForLine(containing: "generation 1 started")
            try run.waitForLine(containing: "generation 1 is ready")
            try run.waitForLine(containing: "upgrades from")
            return (run, port, GracefulRestartTests.pid(in: line, after: "pid") ?? -1)
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
        try run.waitForLine(containing: "upgrade to \(hash.prefix(12)) done")
        let started = try run.waitForLine(containing: "generation 2 started")
        #expect(started.hasSuffix("(\(hash.prefix(12)))"))
        #expect(deployment.installed() == new)
        #expect(deployment.installed(deployment.program + ".previous") == deployment.original)
        try run.waitForLine(containing: "generation 1 stopped")
        let answer = try HTTPClient.get(port: port)
        #expect(answer.pid != old && answer.pid == GracefulRestartTests.pid(in: started, after: "pid"))
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
        try deployment.deploy(rejection.binary(deployment.original))
        let line = try run.waitForLine(containing: "upgrade rejected:")
        #expect(line.contains(rejection.reason), "\(line)")
        #expect(line.hasSuffix("the installed binary stays"))
        #expect(deployment.installed() == deployment.original, "the installed binary is byte-identical")
        #expect(try HTTPClient.get(port: port).pid == old, "the serving child is the same process")
        #expect(run.lines(containing: "generation 2 started").isEmpty)
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
        try run.waitForLine(containing: "restart failed: generation 2 exited with status 3 before ready; generation 1 keeps serving")
        try run.waitForLine(containing: "upgrade to \(hash.prefix(12)) failed")
        try run.waitForLine(containing: "rolled back \(deployment.program)")
        #expect(deployment.installed() == deployment.original)
        #expect(try HTTPClient.get(port: port).pid == old)
        // The same bytes deployed again are recognised and skipped.
        try deployment.deploy(bad)
        try run.waitForLine(containing: "fetched binary \(hash.prefix(12)) was rejected before; skipped")
        #expect(run.lines(containing: "generation 3 started").isEmpty)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func noRestartInstallsForTheNextRestart() throws {
        let deployment = try Deployment()
        let (run, _, _) = try deployment.start(["--no-restart"])
        let new = deployment.variant("later")
        let hash = try Self.sha256(new)
        try deployment.deploy(new)
        try run.waitForLine(containing: "installed \(hash.prefix(12)); it runs from the next restart (--no-restart)")
        #expect(deployment.installed() == new)
        #expect(run.lines(containing: "generation 2 started").isEmpty)
        run.signal(SIGUSR2)
        let started = try run.waitForLine(containing: "generation 2 started")
        #expect(started.hasSuffix("(\(hash.prefix(12)))"))
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
        try run.waitForLine(containing: "done")
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
        let a = deployment.variant("a")
        try deployment.deploy(a, signature: try signature(of: a, key: other, timestamp: now + 100))
        #expect(try run.waitForLine(containing: "upgrade rejected:").contains("signed by another key"))
        // A valid signature for other bytes (tampered file): rejected.
        let b = deployment.variant("b")
        try deployment.deploy(b, signature: try signature(of: a, key: keys, timestamp: now + 100))
        #expect(try run.waitForLine(containing: "upgrade rejected:", after: 0).isEmpty == false)
        try run.waitForLine(containing: "the signature does not match the file")
        #expect(deployment.installed() == deployment.original)
        // Properly signed and newer: installed.
        let c = deployment.variant("c")
        try deployment.deploy(c, signature: try signature(of: c, key: keys, timestamp: now + 2000))
        try run.waitForLine(containing: "upgrade to \(try Self.sha256(c).prefix(12)) done")
        #expect(deployment.installed() == c)
        // An older signed binary replayed: rejected as a downgrade.
        let d = deployment.variant("d")
        try deployment.deploy(d, signature: try signature(of: d, key: keys, timestamp: now + 1000))
        try run.waitForLine(containing: "not after the installed binary")
        #expect(deployment.installed() == c)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

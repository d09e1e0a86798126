import Glibc
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// Staged rollouts end to end: one release manifest on a local HTTP server,
/// two hosts with their own --host-id.
@Suite struct ManifestRolloutTests {
    final class Site {
        let directory: String
        let server: NetworkUpgradeTests.FileServer
        private var step = 0
        let arch = shellOutput("uname -m").trimmingCharacters(in: .whitespacesAndNewlines) == "aarch64" ? "arm64" : "amd64"

        init(_ scratch: ScratchDirectory) throws {
            directory = scratch.file("site")
            server = try NetworkUpgradeTests.FileServer(directory: directory)
        }

        var manifestURL: String { "http://127.0.0.1:\(server.port)/manifest.json" }

        /// Publishes `binary` as VERSION and a manifest for it.
        func publish(_ version: String, _ binary: Data?, sha256: String, percent: Int = 100, yanked: [String] = []) throws {
            if let binary { try binary.write(to: URL(fileURLWithPath: "\(directory)/app-\(version)-linux-\(arch)")) }
            let list = yanked.map { "\"\($0)\"" }.joined(separator: ",")
            let manifest = #"{"version": "\#(version)", "url": "app-\#(version)-{os}-{arch}", "sha256": "\#(sha256)", "staging_percent": \#(percent), "yanked": [\#(list)], "notes": {"ignored": true}}"#
            let path = directory + "/manifest.json"
            try Data(manifest.utf8).write(to: URL(fileURLWithPath: path))
            // http.server answers If-Modified-Since by whole seconds: each manifest is newer.
            step += 1
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(Double(step) * 10)], ofItemAtPath: path)
        }
    }

    @Test func stagesTakeYankAndRefuse() throws {
        let a = try UpgradeTests.Deployment()
        let b = try UpgradeTests.Deployment()
        let site = try Site(a.scratch)
        let v2 = a.variant("2.0.0")
        // Buckets for 2.0.0 (fixed vectors): host-a 28, host-b 63.
        try site.publish("2.0.0", v2, sha256: try UpgradeTests.sha256(v2), percent: 30)
        let socket = a.scratch.file("control.sock")
        // A short probation: a release verified during a trial waits for it (and 2.1.0 follows 2.0.0 here).
        // Unsigned on purpose: this is about the rollout's rules (signing: TrustedRolloutTests).
        let runA = try a.overseerdFetching(["--manifest", site.manifestURL, "--allow-unsigned-manifest", "--state-directory", a.scratch.file("state"),
                                            "--fetch-interval", "300ms", "--host-id", "host-a",
                                            "--control-socket", socket, "--probation", "1s"])
        // host-b tells "systemd" (a fake NOTIFY_SOCKET) what the rollout means for it.
        var receiver: DatagramReceiver? = try DatagramReceiver(b.scratch.file("notify"))
        let runB = try b.overseerdFetching(["--manifest", site.manifestURL, "--allow-unsigned-manifest", "--state-directory", b.scratch.file("state"),
                                            "--fetch-interval", "300ms", "--host-id", "host-b",
                                            "--probation", "1s"],
                                           environment: ["NOTIFY_SOCKET": b.scratch.file("notify")])
        let v2Hash = try UpgradeTests.sha256(v2)
        try runA.waitForEvent(.upgradeSucceeded, binary: v2Hash)
        #expect(a.installed() == v2)
        // The decision, with the figures behind it, is what the line tells the operator.
        let waiting = try runB.waitForEvent(.rolloutDecision)
        #expect(waiting.message == "release 2.0.0 waits for its stage: this host's bucket 63 is not below 30 %", "\(waiting)")
        #expect(b.installed() == b.original)
        let status = try receiver?.collect(until: { $0.contains("manifest 2.0.0 waiting for its stage (bucket 63 of 30 %)") })
        #expect(status?.last?.contains("STATUS=serving generation 1") == true, "\(String(describing: status))")
        // Nobody reads it from here on: gone, so that sends to it fail at once instead of filling its queue.
        receiver = nil
        let (_, json, _) = try HostileInputTests.control(socket, ["status", "--json"])
        #expect(json.contains(#""release_version":"2.0.0""#), "\(json)")

        // Ramped to 100 %: host-b takes it too.
        try site.publish("2.0.0", nil, sha256: v2Hash, percent: 100)
        try runB.waitForEvent(.upgradeSucceeded, binary: v2Hash)
        #expect(b.installed() == v2)

        // A manifest whose sha256 does not match its binary: refused by both.
        let v3 = a.variant("3.0.0")
        try site.publish("3.0.0", v3, sha256: String(repeating: "0", count: 64))
        for run in [runA, runB] {
            let rejected = try run.waitForEvent(.upgradeRejected, binary: try UpgradeTests.sha256(v3))
            #expect(rejected.message.hasPrefix("upgrade rejected: checksum failed"), "\(rejected)")
        }

        // A yanked version is left alone.
        let marks = (runA.logMark, runB.logMark)
        let v4 = a.variant("4.0.0")
        try site.publish("4.0.0", v4, sha256: try UpgradeTests.sha256(v4), yanked: ["4.0.0"])
        for (run, mark) in [(runA, marks.0), (runB, marks.1)] {
            let refused = try run.waitForEvent(.upgradePollFailed, after: mark)
            #expect(refused.message.contains("refused: its own version 4.0.0 is yanked"), "\(refused)")
        }
        #expect(a.installed() == v2 && b.installed() == v2)
        #expect(!runA.hasLogged(.generationStarted, generation: 3) && !runB.hasLogged(.generationStarted, generation: 3))

        // 2.1.0 goes out, then is yanked in its own manifest: both go back to 2.0.0.
        let v21 = a.variant("2.1.0")
        let v21Hash = try UpgradeTests.sha256(v21)
        try site.publish("2.1.0", v21, sha256: v21Hash)
        for run in [runA, runB] {
            try run.waitForEvent(.upgradeSucceeded, binary: v21Hash)
            #expect(run.events(.generationStarted, generation: 3).first?.binary == v21Hash)
        }
        #expect(a.installed() == v21 && b.installed() == v21)
        let yankMarks = (runA.logMark, runB.logMark)
        try site.publish("2.1.0", nil, sha256: v21Hash, yanked: ["2.1.0"])
        for (run, deployment, mark) in [(runA, a, yankMarks.0), (runB, b, yankMarks.1)] {
            let decision = try run.waitForEvent(.rolloutDecision, after: mark)
            #expect(decision.message == "release 2.1.0 is yanked; going back to 2.0.0", "\(decision)")
            let fourth = try run.waitForEvent(.generationStarted, generation: 4)
            #expect(fourth.binary == v2Hash)
            try run.waitForEvent(.restartSucceeded, generation: 4)
            #expect(deployment.installed() == v2)
        }
        let (_, after, _) = try HostileInputTests.control(socket, ["status", "--json"])
        #expect(after.contains(#""release_version":"2.0.0""#), "\(after)")
        runA.signal(SIGTERM)
        runB.signal(SIGTERM)
        _ = try runA.waitForExit()
        _ = try runB.waitForExit()
    }

    /// The same staged rollout from S3 (moto's emulator): the manifest and the
    /// binary are objects; the binary's key is relative to the manifest's.
    @Test func stagedRolloutFromS3() throws {
        let a = try UpgradeTests.Deployment()
        let b = try UpgradeTests.Deployment()
        let arch = shellOutput("uname -m").trimmingCharacters(in: .whitespacesAndNewlines) == "aarch64" ? "arm64" : "amd64"
        let v2 = a.variant("s3-2.0.0")
        let binary = a.scratch.file("upload")
        try v2.write(to: URL(fileURLWithPath: binary))
        let hash = try UpgradeTests.sha256(v2)
        func manifest(_ percent: Int) -> String {
            #"{"version":"2.0.0","url":"app-2.0.0-{os}-{arch}","sha256":"\#(hash)","staging_percent":\#(percent)}"#
        }
        let moto = try MotoS3(bucket: "releases", uploads: [("app/app-2.0.0-linux-\(arch)", binary)])
        try moto.put("app/manifest.json", manifest(30))
        let (port, credentials) = (moto.port, MotoS3.credentials)
        func start(_ deployment: UpgradeTests.Deployment, _ host: String) throws -> RunningProcess {
            try deployment.overseerdFetching(
                ["--manifest", "s3://releases/app/manifest.json", "--s3-endpoint", "http://127.0.0.1:\(port)",
                 "--allow-unsigned-manifest", "--state-directory", deployment.scratch.file("state"),
                 "--fetch-interval", "300ms", "--host-id", host], environment: credentials)
        }
        let runA = try start(a, "host-a")
        let runB = try start(b, "host-b")
        try runA.waitForEvent(.upgradeSucceeded, binary: hash, timeout: 30)
        #expect(a.installed() == v2)
        let waiting = try runB.waitForEvent(.rolloutDecision, timeout: 30)
        #expect(waiting.message.contains("waits for its stage: this host's bucket 63 is not below 30 %"), "\(waiting)")
        // Ramped: the manifest object replaced.
        try moto.put("app/manifest.json", manifest(100))
        try runB.waitForEvent(.upgradeSucceeded, binary: hash, timeout: 30)
        #expect(b.installed() == v2)
        // A manifest whose sha256 does not match its binary, and a yanked one: refused by both.
        try moto.put("app/app-3.0.0-linux-\(arch)", "#!/bin/sh\nexit 1\n")
        try moto.put("app/manifest.json", #"{"version":"3.0.0","url":"app-3.0.0-{os}-{arch}","sha256":"\#(String(repeating: "0", count: 64))"}"#)
        for run in [runA, runB] {
            let rejected = try run.waitForEvent(.upgradeRejected, timeout: 30)
            #expect(rejected.message.hasPrefix("upgrade rejected: checksum failed"), "\(rejected)")
        }
        let marks = (runA.logMark, runB.logMark)
        try moto.put("app/manifest.json", #"{"version":"4.0.0","url":"app-4.0.0-{os}-{arch}","sha256":"\#(hash)","yanked":["4.0.0"]}"#)
        for (run, mark) in [(runA, marks.0), (runB, marks.1)] {
            let refused = try run.waitForEvent(.upgradePollFailed, after: mark, timeout: 30)
            #expect(refused.message.contains("refused: its own version 4.0.0 is yanked"), "\(refused)")
        }
        #expect(a.installed() == v2 && b.installed() == v2)
        runA.signal(SIGTERM)
        runB.signal(SIGTERM)
        _ = try runA.waitForExit()
        _ = try runB.waitForExit()
    }

    /// With --minisign-key the manifest must be signed, and the signature is
    /// checked over the bytes used; the binary is then covered by the manifest's
    /// sha256. A manifest on a path names its binary relative to it.
    @Test func signedManifestFromAPath() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/minisign"), "install the Debian package minisign")
        let deployment = try UpgradeTests.Deployment()
        let releases = deployment.scratch.file("releases")
        try FileManager.default.createDirectory(atPath: releases, withIntermediateDirectories: true)
        let key = deployment.scratch.file("key")
        #expect(try RunningProcess(["/usr/bin/minisign", "-G", "-W", "-p", key + ".pub", "-s", key + ".sec"]).waitForExit() == .exited(0))
        let arch = shellOutput("uname -m").trimmingCharacters(in: .whitespacesAndNewlines) == "aarch64" ? "arm64" : "amd64"
        let v2 = deployment.variant("signed-2.0.0")
        try v2.write(to: URL(fileURLWithPath: "\(releases)/app-2.0.0-linux-\(arch)"))
        let manifest = releases + "/manifest.json"
        func publish(signed: Bool, sequence: Int = 1, size: Int? = nil) throws {
            // Signed: it names its product, its sequence and its binary's size (docs/SECURITY.md).
            let text = #"{"name":"app","sequence":\#(sequence),"size":\#(size ?? v2.count),"version":"2.0.0","url":"app-2.0.0-{os}-{arch}","sha256":"\#(try UpgradeTests.sha256(v2))"}"#
            let temporary = releases + "/.manifest.tmp"
            try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
            if signed {
                #expect(try RunningProcess(["/usr/bin/minisign", "-S", "-s", key + ".sec", "-m", temporary]).waitForExit() == .exited(0))
                try #require(rename(temporary + ".minisig", manifest + ".minisig") == 0)
            }
            try #require(rename(temporary, manifest) == 0)
        }
        try publish(signed: false)
        let run = try RunningProcess.overseerd(
            ["--ready", "notify", "--log-format", "json", "--manifest", manifest, "--minisign-key", key + ".pub",
             "--state-directory", deployment.scratch.file("state"),
             "--host-id", "host-a", "--fetch-interval", "300ms", "-l", "127.0.0.1:0", "--", deployment.program],
            environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0"])
        let refused = try run.waitForEvent(.manifestRefused)
        #expect(refused.message.contains("refused: there is no .minisig signature beside it"), "\(refused)")
        // A size one byte short of the binary: copied only up to it, refused.
        let mark = run.logMark
        try publish(signed: true, sequence: 1, size: v2.count - 1)
        let short = try run.waitForEvent(.upgradePollFailed, after: mark)
        #expect(short.message.contains("the binary is longer than the manifest's \"size\" \(v2.count - 1): refused without reading it whole"), "\(short)")
        #expect(deployment.installed() == deployment.original)
        try publish(signed: true, sequence: 2)
        try run.waitForEvent(.upgradeSucceeded, binary: try UpgradeTests.sha256(v2))
        #expect(deployment.installed() == v2)
        #expect(!run.hasLogged(.upgradeRejected))
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

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
        let runA = try a.overseerdFetching(["--manifest", site.manifestURL, "--fetch-interval", "300ms", "--host-id", "host-a",
                                            "--control-socket", socket])
        let runB = try b.overseerdFetching(["--manifest", site.manifestURL, "--fetch-interval", "300ms", "--host-id", "host-b"])
        try runA.waitForLine(containing: "generation 2 is ready")
        #expect(a.installed() == v2)
        try runB.waitForLine(containing: "release 2.0.0 waits for its stage: this host's bucket 63 is not below 30 %")
        #expect(b.installed() == b.original)
        let (_, status, _) = try HostileInputTests.control(socket, ["status", "--json"])
        #expect(status.contains(#""release_version":"2.0.0""#), "\(status)")

        // Ramped to 100 %: host-b takes it too.
        try site.publish("2.0.0", nil, sha256: try UpgradeTests.sha256(v2), percent: 100)
        try runB.waitForLine(containing: "generation 2 is ready")
        #expect(b.installed() == v2)

        // A manifest whose sha256 does not match its binary: refused by both.
        let v3 = a.variant("3.0.0")
        try site.publish("3.0.0", v3, sha256: String(repeating: "0", count: 64))
        try runA.waitForLine(containing: "upgrade rejected: checksum failed")
        try runB.waitForLine(containing: "upgrade rejected: checksum failed")

        // A yanked version is left alone.
        let v4 = a.variant("4.0.0")
        try site.publish("4.0.0", v4, sha256: try UpgradeTests.sha256(v4), yanked: ["4.0.0"])
        try runA.waitForLine(containing: "refused: its own version 4.0.0 is yanked")
        try runB.waitForLine(containing: "refused: its own version 4.0.0 is yanked")
        #expect(a.installed() == v2 && b.installed() == v2)
        #expect(runA.lines(containing: "generation 3 started").isEmpty && runB.lines(containing: "generation 3 started").isEmpty)
        runA.signal(SIGTERM)
        runB.signal(SIGTERM)
        _ = try runA.waitForExit()
        _ = try runB.waitForExit()
    }
}

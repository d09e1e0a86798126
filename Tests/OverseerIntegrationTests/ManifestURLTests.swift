import Glibc
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// A manifest's `url` is resolved against the manifest's own URL (RFC 3986):
/// a manifest fetched over HTTP never names a file on the host's disk.
@Suite struct ManifestURLTests {
    /// Writes a manifest naming `url` for `binary` into the site, newer than the last one.
    static func publish(_ site: ManifestRolloutTests.Site, version: String, url: String, binary: Data) throws {
        let manifest = #"{"version": "\#(version)", "url": "\#(url)", "sha256": "\#(try UpgradeTests.sha256(binary))"}"#
        let path = site.directory + "/manifest.json"
        try Data(manifest.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(10)], ofItemAtPath: path)
    }

    /// `"url": "/PATH"` names PATH on the manifest's server. The bytes the manifest
    /// vouches for lie at PATH on local disk only: they must not be installed.
    @Test func anAbsolutePathIsAskedOfTheManifestsServer() throws {
        let deployment = try UpgradeTests.Deployment()
        let site = try ManifestRolloutTests.Site(deployment.scratch)
        let v2 = deployment.variant("2.0.0")
        let local = deployment.scratch.file("local-app-2.0.0")
        try deployment.write(v2, to: local)
        try Self.publish(site, version: "2.0.0", url: local, binary: v2)
        let run = try deployment.overseerdFetching(["--manifest", site.manifestURL, "--allow-unsigned-manifest", "--state-directory", deployment.scratch.file("state"),
                                                    "--fetch-interval", "300ms", "--log-format", "json"])
        _ = try StructuredLogTests.waitForEvent(run, "generation_ready", generation: 1)
        try site.server.process.waitForLine(containing: "\"GET \(local) HTTP/1.1\" 404")
        _ = try StructuredLogTests.waitForEvent(run, "upgrade_poll_failed")
        #expect(deployment.installed() == deployment.original)
        #expect(StructuredLogTests.objects(run).allSatisfy { $0["event"] as? String != "generation_started" || $0["generation"] as? Int == 1 })
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// `"url": "//HOST:PORT/PATH"` (a network-path reference) keeps the manifest's scheme.
    @Test func aNetworkPathReferenceIsFetchedOverHTTP() throws {
        let deployment = try UpgradeTests.Deployment()
        let site = try ManifestRolloutTests.Site(deployment.scratch)
        let v2 = deployment.variant("2.0.0")
        try FileManager.default.createDirectory(atPath: site.directory + "/rel", withIntermediateDirectories: true)
        try deployment.write(v2, to: site.directory + "/rel/app-2.0.0")
        try Self.publish(site, version: "2.0.0", url: "//127.0.0.1:\(site.server.port)/rel/app-2.0.0", binary: v2)
        let run = try deployment.overseerdFetching(["--manifest", site.manifestURL, "--allow-unsigned-manifest", "--state-directory", deployment.scratch.file("state"),
                                                    "--fetch-interval", "300ms", "--log-format", "json"])
        _ = try StructuredLogTests.waitForEvent(run, "upgrade_succeeded")
        #expect(deployment.installed() == v2)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

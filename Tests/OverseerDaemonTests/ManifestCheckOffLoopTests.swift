import Foundation
import Logging
import OverseerCore
@testable import OverseerDaemon
import OverseerSystem
import OverseerTestSupport
import Testing

/// Red team of issue 24: a manifest is up to 1 MiB and may carry 32 signature
/// blocks; parsing it, hashing it and checking a signature per trusted key over
/// it took 31 ms of the event loop per poll (16 keys, blocks forged under their
/// public key ids, measured here). Anyone who can serve the manifest can do
/// that at every poll, so those checks run as a background job, as the binary's do.
@Suite struct ManifestCheckOffLoopTests {
    init() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/minisign"), "install the Debian package minisign")
    }

    @Test func aForgedManifestIsCheckedOffTheLoop() throws {
        let scratch = ScratchDirectory()
        let status = try RunningProcess(["/usr/bin/minisign", "-G", "-W", "-p", scratch.file("k.pub"), "-s", scratch.file("k.sec")]).waitForExit()
        try #require(status == .exited(0))
        try FileManager.default.createDirectory(atPath: scratch.file("state"), withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let fixture = try UpgradeDriverTests.Fixture { settings in
            settings.manifest = true
            settings.minisignKeys = [scratch.file("k.pub")]
            settings.stateDirectory = scratch.file("state")
        }
        // Signed by the trusted key, but over other bytes: refused for its signature.
        let other = scratch.file("other.json")
        try Data("{}".utf8).write(to: URL(fileURLWithPath: other))
        let sign = try RunningProcess(["/usr/bin/minisign", "-S", "-s", scratch.file("k.sec"), "-m", other]).waitForExit()
        try #require(sign == .exited(0))
        try Data(contentsOf: URL(fileURLWithPath: other + ".minisig")).write(to: URL(fileURLWithPath: fixture.deployPath + ".minisig"))
        try fixture.deploy(#"{"name":"app","sequence":1,"size":2,"version":"2.0.0","url":"/nowhere","sha256":"\#(String(repeating: "a", count: 64))"}"#)

        var checkedInBackground = false
        try run(fixture.reactor) {
            if fixture.records.count(.error) == 0, fixture.driver.backgroundJobs > 0 { checkedInBackground = true }
            return fixture.records.count(.error) > 0
        }
        #expect(fixture.records.entries.contains { $0.level == .error && $0.message.contains("refused") }, "\(fixture.records.entries)")
        #expect(checkedInBackground, "the manifest was judged on the loop, in the turn that read it")
        #expect(fixture.installed == "v1")
    }
}

import Glibc
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// The `name` a manifest must carry by default: the program's file name as
/// started, not the name of the file a symbolic link to it leads to.
@Suite struct ReleaseNameTests {
    @Test func theDefaultIsTheNameTheProgramIsStartedBy() throws {
        let deployment = try UpgradeTests.Deployment()
        let keys = try TrustedRolloutTests.Keys(1, in: deployment.scratch)
        // current -> app: the deploy pattern of a releases directory.
        let link = deployment.scratch.file("current")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: deployment.program)
        let releases = deployment.scratch.file("releases")
        try FileManager.default.createDirectory(atPath: releases, withIntermediateDirectories: true)
        let v2 = deployment.variant("named-2.0.0")
        try v2.write(to: URL(fileURLWithPath: releases + "/app-2.0.0"))
        let manifest = releases + "/manifest.json"
        func publish(name: String, sequence: Int) throws {
            let text = Data(#"{"name":"\#(name)","sequence":\#(sequence),"size":\#(v2.count),"version":"2.0.0","url":"app-2.0.0","sha256":"\#(try UpgradeTests.sha256(v2))"}"#.utf8)
            try keys.sign(text, by: [0]).write(to: URL(fileURLWithPath: manifest + ".minisig"))
            try text.write(to: URL(fileURLWithPath: manifest))
        }
        try publish(name: "app", sequence: 1)
        let run = try RunningProcess.overseerd(
            ["--ready", "notify", "--log-format", "json", "--manifest", manifest, "--minisign-key", keys.pub(0),
             "--state-directory", deployment.scratch.file("state"), "--host-id", "host-a", "--fetch-interval", "300ms",
             "-l", "127.0.0.1:0", "--", link],
            environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0"])
        // The link's target is called app: not the name this program is started by.
        let refused = try run.waitForEvent(.manifestRefused)
        #expect(refused.message.contains(#"it is for "app", not "current" (--release-name)"#), "\(refused)")
        try publish(name: "current", sequence: 2)
        try run.waitForEvent(.upgradeSucceeded, binary: try UpgradeTests.sha256(v2))
        #expect(deployment.installed() == v2, "installed through the link, into the file it leads to")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

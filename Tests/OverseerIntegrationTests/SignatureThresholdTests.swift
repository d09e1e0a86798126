import Glibc
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// `--fetch` with several `--minisign-key` and `--signatures-required`: the
/// binary's `.minisig` holds one signature per signer, one after another.
@Suite struct SignatureThresholdTests {
    @Test func twoOfThreeKeysSignABinary() throws {
        let deployment = try UpgradeTests.Deployment()
        let keys = try TrustedRolloutTests.Keys(4, in: deployment.scratch)
        let (run, _, _) = try deployment.start(["--minisign-key", keys.pub(0), "--minisign-key", keys.pub(1),
                                                "--minisign-key", keys.pub(2), "--signatures-required", "2"])
        // One trusted signature and one by a stranger (key 3): one is not two.
        let a = deployment.variant("threshold-a")
        try deployment.deploy(a, signature: String(decoding: try keys.sign(a, by: [0, 3]), as: UTF8.self))
        let one = try run.waitForEvent(.upgradeRejected, binary: try UpgradeTests.sha256(a))
        #expect(one.message.contains("valid signatures by 1 of the 3 trusted key(s), 2 required"), "\(one)")
        // The same key twice counts once.
        let b = deployment.variant("threshold-b")
        try deployment.deploy(b, signature: String(decoding: try keys.sign(b, by: [1, 1]), as: UTF8.self))
        let twice = try run.waitForEvent(.upgradeRejected, binary: try UpgradeTests.sha256(b))
        #expect(twice.message.hasSuffix("signature failed for \(try UpgradeTests.sha256(b).prefix(12)): valid signatures by 1 of the 3 trusted key(s), 2 required; the installed binary stays"), "\(twice)")
        // A malformed block refuses the file, whatever else it holds.
        let c = deployment.variant("threshold-c")
        try deployment.deploy(c, signature: String(decoding: try keys.sign(c, by: [0, 1]), as: UTF8.self) + "untrusted comment: half a signature\n")
        let malformed = try run.waitForEvent(.upgradeRejected, binary: try UpgradeTests.sha256(c))
        #expect(malformed.message.contains("the signature file has 9 lines"), "\(malformed)")
        #expect(deployment.installed() == deployment.original)
        // Two of the three: installed.
        let d = deployment.variant("threshold-d")
        try deployment.deploy(d, signature: String(decoding: try keys.sign(d, by: [2, 0], timestamp: Int(Date().timeIntervalSince1970) + 100), as: UTF8.self))
        try run.waitForEvent(.upgradeSucceeded, binary: try UpgradeTests.sha256(d))
        #expect(deployment.installed() == d)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

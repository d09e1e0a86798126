import OverseerCore
import Testing

@Suite struct ReleaseVersionTests {
    @Test(arguments: [
        ("1.9.0", "2.0.0"), ("1.9.0", "1.10.0"), ("v1.2.3", "1.2.4"), ("2.0.0-rc.1", "2.0.0"),
        ("2.0.0-alpha", "2.0.0-beta"), ("2.0.0-rc.2", "2.0.0-rc.10"), ("1.0", "1.0.1"), ("2.0.0-rc", "2.0.0-rc.1"),
    ])
    func ordered(older: String, newer: String) {
        #expect(ReleaseVersion.isOlder(older, than: newer))
        #expect(!ReleaseVersion.isOlder(newer, than: older))
    }

    @Test func equalOnes() {
        #expect(ReleaseVersion.compare("1.0", "1.0.0") == 0)
        #expect(ReleaseVersion.compare("v2.0.0+build.7", "2.0.0") == 0)
    }
}

/// One host's decision about a manifest, rule by rule.
@Suite struct RolloutDecisionTests {
    static func facts(_ manifest: String, installed: String?, previous: String? = nil, yanked: [String] = [],
                      percent: Int = 100, bucket: Int = 50) -> RolloutDecision.Facts {
        .init(manifestVersion: manifest, stagingPercent: percent, yanked: yanked, installedVersion: installed,
              previousVersion: previous, bucket: bucket)
    }

    @Test func stagedByBucket() {
        #expect(RolloutDecision.decide(Self.facts("2.0.0", installed: "1.0.0", percent: 30, bucket: 29)) == .take(why: "1.0.0 → 2.0.0, bucket 29 < 30 %"))
        #expect(RolloutDecision.decide(Self.facts("2.0.0", installed: "1.0.0", percent: 30, bucket: 30)) == .waitForStage(bucket: 30, percent: 30))
        #expect(RolloutDecision.decide(Self.facts("2.0.0", installed: "1.0.0", percent: 0, bucket: 0)) == .waitForStage(bucket: 0, percent: 0))
        #expect(RolloutDecision.decide(Self.facts("2.0.0", installed: "1.0.0", percent: 100, bucket: 99)) == .take(why: "1.0.0 → 2.0.0, bucket 99 < 100 %"))
    }

    @Test func sameVersionIsUpToDate() {
        #expect(RolloutDecision.decide(Self.facts("2.0.0", installed: "2.0.0")) == .upToDate)
    }

    @Test func olderManifestIsRefusedUnlessTheInstalledOneIsYanked() {
        #expect(RolloutDecision.decide(Self.facts("1.0.0", installed: "2.0.0")) == .reject("1.0.0 is older than the installed 2.0.0"))
        #expect(RolloutDecision.decide(Self.facts("1.0.0", installed: "2.0.0", yanked: ["2.0.0"], bucket: 99))
            == .take(why: "the installed 2.0.0 is yanked"))
    }

    @Test func yankedInstalledReleaseIsFixedForwardWhateverTheStage() {
        #expect(RolloutDecision.decide(Self.facts("2.0.1", installed: "2.0.0", yanked: ["2.0.0"], percent: 5, bucket: 80))
            == .take(why: "the installed 2.0.0 is yanked"))
    }

    @Test func yankedManifestVersionGoesBackOrStays() {
        #expect(RolloutDecision.decide(Self.facts("2.0.0", installed: "2.0.0", previous: "1.9.0", yanked: ["2.0.0"]))
            == .rollBackToPrevious(why: "2.0.0 is yanked; going back to 1.9.0"))
        #expect(RolloutDecision.decide(Self.facts("2.0.0", installed: "2.0.0", previous: "1.9.0", yanked: ["2.0.0", "1.9.0"]))
            == .reject("2.0.0 is yanked, but there is no earlier release that is not: it stays"))
        #expect(RolloutDecision.decide(Self.facts("2.0.0", installed: "1.9.0", yanked: ["2.0.0"]))
            == .reject("its own version 2.0.0 is yanked"))
    }

    @Test func firstManifestInstallIsStagedToo() {
        #expect(RolloutDecision.decide(Self.facts("2.0.0", installed: nil, percent: 10, bucket: 50)) == .waitForStage(bucket: 50, percent: 10))
        #expect(RolloutDecision.decide(Self.facts("2.0.0", installed: nil, percent: 10, bucket: 5))
            == .take(why: "first release from this manifest, bucket 5 < 10 %"))
    }

    @Test func goArchitectureNames() {
        #expect(RolloutDecision.goArchitecture(machine: "x86_64") == "amd64")
        #expect(RolloutDecision.goArchitecture(machine: "aarch64") == "arm64")
    }
}

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

/// The rules docs/PROTOCOL.md gives a publisher for ordering versions, example by example.
@Suite struct ReleaseVersionRulesTests {
    @Test(arguments: [
        // Numbers compare as numbers, part by part.
        ("1.9", "1.10"), ("1.9.9", "1.10.0"), ("2", "10"), ("0.9.99", "1.0.0"),
        // A pre-release comes before its release; its parts compare the same way.
        ("2.0.0-rc.1", "2.0.0"), ("2.0.0-rc.9", "2.0.0-rc.10"), ("2.0.0-alpha", "2.0.0-alpha.1"), ("2.0.0-alpha.beta", "2.0.0-beta"),
        // Numeric parts before words, words by their bytes (upper case before lower case).
        ("1.0.0-1", "1.0.0-alpha"), ("1.0.0-RC1", "1.0.0-rc1"),
        // A version that is not numeric sorts by its bytes, after every numeric one.
        ("9.9", "nightly"), ("banana", "cherry"), ("2024.10.01", "2024.10.2"),
    ])
    func ordered(older: String, newer: String) {
        #expect(ReleaseVersion.compare(older, newer) == -1, "\(older) < \(newer)")
        #expect(ReleaseVersion.compare(newer, older) == 1, "\(newer) > \(older)")
    }

    @Test(arguments: [("1.0", "1.0.0"), ("v1.2.3", "1.2.3"), ("V1.2.3", "1.2.3"), ("1.2.3+build.5", "1.2.3+build.9"), ("1.0.0-rc.1+x", "1.0.0-rc.1")])
    func equal(a: String, b: String) {
        #expect(ReleaseVersion.compare(a, b) == 0)
    }
}

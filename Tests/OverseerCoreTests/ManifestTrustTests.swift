import OverseerCore
import OverseerProtocol
import Testing

/// `ManifestTrust` event by event: each rule of docs/SECURITY.md, and the order they are checked in.
@Suite struct ManifestTrustTests {
    static let now: Int64 = 1_800_000_000
    static func keys(_ names: String..., required: Int = 1) -> ManifestTrust.KeySet { .init(keys: names, required: required) }
    static func candidate(_ sequence: UInt64?, digest: String = "d", signers: Set<String> = ["a"], name: String? = "app",
                          size: Int64? = 10, expires: Int64? = nil, rotation: ManifestTrust.KeySet? = nil) -> ManifestTrust.Candidate {
        .init(name: name, sequence: sequence, size: size, expires: expires, rotation: rotation, digest: digest, signers: signers)
    }

    @Test func acceptsAndRaisesTheSequence() {
        var trust = ManifestTrust(commandLine: Self.keys("a"))
        #expect(trust.judge(Self.candidate(5), releaseName: "app", now: Self.now) == .accepted(rotated: nil))
        #expect(trust.highest?.sequence == 5 && trust.highest?.digest == "d")
        // The same manifest polled again: taken, nothing changes.
        #expect(trust.judge(Self.candidate(5), releaseName: "app", now: Self.now) == .accepted(rotated: nil))
        #expect(trust.judge(Self.candidate(6, digest: "e"), releaseName: "app", now: Self.now) == .accepted(rotated: nil))
        #expect(trust.highest?.sequence == 6 && trust.highest?.digest == "e")
    }

    @Test func replayedAndConflictingSequencesAreRefusedAndChangeNothing() {
        var trust = ManifestTrust(commandLine: Self.keys("a"))
        _ = trust.judge(Self.candidate(7, digest: "seven"), releaseName: "app", now: Self.now)
        let before = trust
        let replay = trust.judge(Self.candidate(6, digest: "six"), releaseName: "app", now: Self.now)
        #expect(replay == .refused(.replayed(sequence: 6, highest: 7)))
        if case let .refused(refusal) = replay { #expect(refusal.event == .manifestReplayed) }
        let conflict = trust.judge(Self.candidate(7, digest: "other"), releaseName: "app", now: Self.now)
        #expect(conflict == .refused(.conflict(sequence: 7)))
        if case let .refused(refusal) = conflict { #expect(refusal.event == .manifestConflict) }
        #expect(trust == before)
    }

    @Test func expiredIsRefusedAndTheAcceptedExpiryIsWatched() {
        var trust = ManifestTrust(commandLine: Self.keys("a"))
        let verdict = trust.judge(Self.candidate(1, expires: Self.now), releaseName: "app", now: Self.now)
        #expect(verdict == .refused(.expired(at: Self.now)))
        if case let .refused(refusal) = verdict {
            #expect(refusal.event == .manifestExpired)
            #expect(refusal.description.contains("expired at 2027-01-15T08:00:00Z"), "\(refusal)")
        }
        #expect(trust.highest == nil, "an expired manifest raises nothing")
        #expect(trust.judge(Self.candidate(2, expires: Self.now + 60), releaseName: "app", now: Self.now) == .accepted(rotated: nil))
        #expect(trust.expires == Self.now + 60)
        #expect(!trust.hasExpired(now: Self.now + 59))
        #expect(trust.hasExpired(now: Self.now + 60))
    }

    @Test func aSignedManifestNamesItselfItsSequenceAndSize() {
        var trust = ManifestTrust(commandLine: Self.keys("a"))
        #expect(trust.judge(Self.candidate(1, name: nil), releaseName: "app", now: Self.now) == .refused(.missing(field: "name")))
        #expect(trust.judge(Self.candidate(nil), releaseName: "app", now: Self.now) == .refused(.missing(field: "sequence")))
        #expect(trust.judge(Self.candidate(1, size: nil), releaseName: "app", now: Self.now) == .refused(.missing(field: "size")))
        let other = trust.judge(Self.candidate(1, name: "billing"), releaseName: "app", now: Self.now)
        #expect(other == .refused(.wrongName("billing", expected: "app")))
        if case let .refused(refusal) = other { #expect(refusal.event == .manifestRefused) }
    }

    @Test func unsignedTakesWhatItHasAndChecksWhatIsThere() {
        var trust = ManifestTrust(commandLine: .init(keys: [], required: 1))
        #expect(trust.judge(Self.candidate(nil, signers: [], name: nil, size: nil), releaseName: "app", now: Self.now) == .accepted(rotated: nil))
        #expect(trust.judge(Self.candidate(3, signers: []), releaseName: "app", now: Self.now) == .accepted(rotated: nil))
        #expect(trust.judge(Self.candidate(2, signers: []), releaseName: "app", now: Self.now) == .refused(.replayed(sequence: 2, highest: 3)))
        #expect(trust.judge(Self.candidate(4, signers: [], name: "other"), releaseName: "app", now: Self.now) == .refused(.wrongName("other", expected: "app")))
        // Keys cannot come from a manifest nobody signed.
        if case .refused(.badRotation) = trust.judge(Self.candidate(5, signers: ["x"], rotation: Self.keys("x")), releaseName: "app", now: Self.now) {} else {
            Issue.record("an unsigned manifest installed keys")
        }
    }

    @Test func thresholdCountsDistinctTrustedKeys() {
        var trust = ManifestTrust(commandLine: Self.keys("a", "b", "c", required: 2))
        #expect(trust.judge(Self.candidate(1, signers: ["a"]), releaseName: "app", now: Self.now)
            == .refused(.notEnoughSignatures(valid: 1, required: 2, keys: 3)))
        #expect(trust.judge(Self.candidate(1, signers: ["a", "stranger"]), releaseName: "app", now: Self.now)
            == .refused(.notEnoughSignatures(valid: 1, required: 2, keys: 3)))
        #expect(trust.judge(Self.candidate(1, signers: ["a", "c"]), releaseName: "app", now: Self.now) == .accepted(rotated: nil))
    }

    @Test func rotationNeedsBothThresholdsAndRetiresTheOldKeys() {
        var trust = ManifestTrust(commandLine: Self.keys("a", "b", required: 1))
        let new = Self.keys("c", "d", required: 2)
        // Signed by the old keys only: refused.
        #expect(trust.judge(Self.candidate(1, signers: ["a"], rotation: new), releaseName: "app", now: Self.now)
            == .refused(.rotationNotSigned(valid: 0, required: 2, keys: 2)))
        // By the new keys only: the current threshold is not met.
        #expect(trust.judge(Self.candidate(1, signers: ["c", "d"], rotation: new), releaseName: "app", now: Self.now)
            == .refused(.notEnoughSignatures(valid: 0, required: 1, keys: 2)))
        #expect(trust.current == Self.keys("a", "b"))
        #expect(trust.judge(Self.candidate(1, signers: ["a", "c", "d"], rotation: new), releaseName: "app", now: Self.now) == .accepted(rotated: new))
        #expect(trust.current == new)
        // The retired key, even with a higher sequence: refused.
        #expect(trust.judge(Self.candidate(2, signers: ["a", "b"]), releaseName: "app", now: Self.now)
            == .refused(.notEnoughSignatures(valid: 0, required: 2, keys: 2)))
        // The next manifest keeps naming its keys: no rotation, accepted.
        #expect(trust.judge(Self.candidate(2, signers: ["c", "d"], rotation: new), releaseName: "app", now: Self.now) == .accepted(rotated: nil))
        let forgot = trust.forgetKeys()
        #expect(forgot)
        #expect(trust.current == Self.keys("a", "b"))
        let again = trust.forgetKeys()
        #expect(!again)
    }

    /// Found by the simulation (seed 102): the rotation's manifest replayed after
    /// `forget-keys` rotated the keys again, and the publisher's next manifests were refused.
    @Test func theRotationsManifestReplayedRotatesNothing() {
        var trust = ManifestTrust(commandLine: Self.keys("a"))
        let rotation = Self.candidate(1, signers: ["a", "b"], rotation: Self.keys("b"))
        #expect(trust.judge(rotation, releaseName: "app", now: Self.now) == .accepted(rotated: Self.keys("b")))
        _ = trust.forgetKeys()
        #expect(trust.judge(rotation, releaseName: "app", now: Self.now) == .accepted(rotated: nil))
        #expect(trust.current == Self.keys("a"))
        #expect(trust.judge(Self.candidate(2, signers: ["a"]), releaseName: "app", now: Self.now) == .accepted(rotated: nil))
    }

    @Test func malformedRotationsAreRefused() {
        var trust = ManifestTrust(commandLine: Self.keys("a"))
        #expect(trust.judge(Self.candidate(1, signers: ["a", "c"], rotation: Self.keys("c", required: 2)), releaseName: "app", now: Self.now)
            == .refused(.badRotation("\"signatures_required\" 2 is not between 1 and its 1 key(s)")))
        #expect(trust.judge(Self.candidate(1, signers: ["a"], rotation: .init(keys: [], required: 1)), releaseName: "app", now: Self.now)
            == .refused(.badRotation("it names no keys")))
    }

    @Test func theRecordRoundTripsAndARotationFollowsItsCommandLine() throws {
        var trust = ManifestTrust(commandLine: Self.keys("a"))
        _ = trust.judge(Self.candidate(9, digest: String(repeating: "ab", count: 32), signers: ["a", "b"], expires: Self.now + 5,
                                       rotation: Self.keys("b")), releaseName: "app", now: Self.now)
        let text = trust.record.encoded
        #expect(text == """
            overseerd-manifest-trust 1
            sequence 9 \(String(repeating: "ab", count: 32))
            expires \(Self.now + 5)
            keys 1 b
            from a

            """)
        let parsed = try ManifestTrust.Record(parsing: text)
        #expect(ManifestTrust(commandLine: Self.keys("a"), record: parsed) == trust)
        // The operator changed --minisign-key since: the rotation is not carried over, the sequence is.
        let changed = ManifestTrust(commandLine: Self.keys("z"), record: parsed)
        #expect(changed.current == Self.keys("z"))
        #expect(changed.highest?.sequence == 9)
    }

    @Test(arguments: ["", "overseerd-manifest-trust 2\n", "overseerd-manifest-trust 1\nsequence x y\n",
                      "overseerd-manifest-trust 1\nkeys 3 a b\nfrom a\n", "overseerd-manifest-trust 1\nkeys 1 a\n",
                      "overseerd-manifest-trust 1\nsurprise\n", "overseerd-manifest-trust 1\nexpires soon\n"])
    func badRecordsAreRefused(text: String) {
        #expect(throws: ConfigurationError.self) { try ManifestTrust.Record(parsing: text) }
    }
}

@Suite struct RFC3339Tests {
    @Test(arguments: [
        ("1970-01-01T00:00:00Z", Int64(0)), ("2026-12-31T23:59:59Z", 1_798_761_599), ("2000-02-29T12:00:00Z", 951_825_600),
        ("2027-01-15T08:00:00z", 1_800_000_000), ("2027-01-15T10:00:00+02:00", 1_800_000_000),
        ("2027-01-15T07:30:00.123456-00:30", 1_800_000_000), ("2016-12-31T23:59:60Z", 1_483_228_799),
    ])
    func parses(text: String, seconds: Int64) {
        #expect(RFC3339.parse(text) == seconds)
    }

    @Test(arguments: ["", "2026-12-31", "2026-12-31 23:59:59Z", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                      "2026-12-31T24:00:00Z", "2026-12-31T23:59:59", "2026-12-31T23:59:59+0200", "1969-12-31T23:59:59Z",
                      "2026-12-31T23:59:59.Z", "２026-12-31T23:59:59Z", "2026-12-31T23:59:59Zjunk"])
    func refuses(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test func formatsWhatItParses() {
        var random = SystemRandomNumberGenerator()
        for _ in 0 ..< 2000 {
            let seconds = Int64.random(in: 0 ... 253_402_300_799, using: &random)
            #expect(RFC3339.parse(RFC3339.format(seconds)) == seconds)
        }
        #expect(RFC3339.format(1_800_000_000) == "2027-01-15T08:00:00Z")
    }
}

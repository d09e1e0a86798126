import OverseerCore
import Testing

/// `BinaryLife` alone, event by event, and its record's codec.
@Suite struct BinaryLifeTests {
    static let a = ProbationTests.a
    static let b = ProbationTests.b
    static let c = ProbationTests.c

    @Test func theFileInPlaceAtTheFirstStartIsTheLastGoodBinary() {
        var life = BinaryLife(probation: .seconds(30))
        #expect(life.handle(.started(identified: Self.a)) == [.persist])
        #expect(life.installed == .init(sha256: Self.a))
        #expect(life.lastGood == .init(sha256: Self.a))
        #expect(!life.isOnTrial)
    }

    @Test func aBinaryChangedByHandIsTheNewBaseline() {
        var life = BinaryLife(probation: .seconds(30), record: .init(installed: .init(sha256: Self.a, version: "1.0"),
                                                                     lastGood: .init(sha256: Self.a, version: "1.0"),
                                                                     prior: .init(sha256: Self.c), rejected: [Self.b]))
        let actions = life.handle(.started(identified: Self.b))
        #expect(actions.contains(.persist))
        #expect(life.installed == .init(sha256: Self.b))
        #expect(life.lastGood == .init(sha256: Self.b))
        #expect(life.record.prior == nil)
        #expect(life.rejected.isEmpty, "an operator's own choice is not held against it")
    }

    @Test func onlyTheTrialBinarysGenerationsAreCovered() {
        var life = BinaryLife(probation: .seconds(30))
        _ = life.handle(.started(identified: Self.a))
        _ = life.handle(.generationStarted(1, binary: Self.a))
        _ = life.handle(.installing(.init(sha256: Self.b)))
        _ = life.handle(.generationStarted(2, binary: Self.b))
        #expect(life.trialGenerations == [2])
        // A's generation failing is not B's trial.
        #expect(life.handle(.generationFailed(1, reason: "exited")) == [])
        #expect(life.rollback == nil)
        let failed = life.handle(.generationFailed(2, reason: "exited with status 1"))
        #expect(failed.last == .rollBack(to: .init(sha256: Self.a), replacing: .init(sha256: Self.b)))
        // Once: a second failure while the rollback runs starts nothing more.
        _ = life.handle(.generationStarted(3, binary: Self.b))
        #expect(life.handle(.generationFailed(3, reason: "again")) == [])
    }

    @Test func aFailedInstallLeavesTheLastGoodBinaryInstalled() {
        var life = BinaryLife(probation: .seconds(30))
        _ = life.handle(.started(identified: Self.a))
        _ = life.handle(.installing(.init(sha256: Self.b, version: "2")))
        #expect(life.handle(.installFailed(sha256: Self.b)) == [.persist])
        #expect(life.installed == .init(sha256: Self.a))
        #expect(!life.isOnTrial)
    }

    @Test func aRollbackThatPutsBackTheWrongFileSaysSoAndEndsTheTrial() {
        var life = BinaryLife(probation: .seconds(30))
        _ = life.handle(.started(identified: Self.a))
        _ = life.handle(.installing(.init(sha256: Self.b)))
        _ = life.handle(.generationStarted(2, binary: Self.b))
        _ = life.handle(.generationFailed(2, reason: "exited"))
        let actions = life.handle(.rollbackFinished(restored: Self.c, failure: nil))
        #expect(actions.contains(.persist))
        #expect(life.installed?.sha256 == Self.b, "what is in place is still the rejected binary")
        #expect(!life.isOnTrial)
        #expect(life.rejected == [Self.b])
    }

    /// Red team, issue 22: after a trial's rollback the binary before the last good one is not on disk
    /// any more, so a yank of the last good release has nowhere to go: it serves on, not rejected.
    @Test func aYankAfterATrialRollbackHasNoPriorAndRejectsNothing() {
        var life = BinaryLife(probation: .seconds(3), record: .init(installed: .init(sha256: Self.b, version: "2"),
                                                                    lastGood: .init(sha256: Self.b, version: "2"),
                                                                    prior: .init(sha256: Self.a, version: "1")))
        _ = life.handle(.started(identified: Self.b))
        _ = life.handle(.installing(.init(sha256: Self.c, version: "3")))
        #expect(life.record.prior == nil, "the install moved the last good binary to PROGRAM.previous")
        _ = life.handle(.generationStarted(2, binary: Self.c))
        _ = life.handle(.generationFailed(2, reason: "exited"))
        _ = life.handle(.rollbackFinished(restored: Self.b, failure: nil))
        let yank = life.handle(.yanked(reason: "2 yanked"))
        #expect(!yank.contains { if case .rollBack = $0 { true } else { false } })
        #expect(!life.rejected.contains(Self.b))
        #expect(life.handle(.yanked(reason: "2 yanked")).isEmpty, "said once")
    }

    @Test func aYankThatCannotBeCarriedOutLeavesTheGoodReleaseServingAndUnrejected() {
        var life = BinaryLife(probation: .seconds(3), record: .init(installed: .init(sha256: Self.b, version: "2"),
                                                                    lastGood: .init(sha256: Self.b, version: "2"),
                                                                    prior: .init(sha256: Self.a, version: "1")))
        _ = life.handle(.started(identified: Self.b))
        #expect(life.handle(.yanked(reason: "2 yanked")).contains(.rollBack(to: .init(sha256: Self.a, version: "1"), replacing: .init(sha256: Self.b, version: "2"))))
        _ = life.handle(.rollbackFinished(restored: nil, failure: "PROGRAM.previous is something else"))
        #expect(!life.rejected.contains(Self.b))
        #expect(life.installed?.sha256 == Self.b && life.lastGood?.sha256 == Self.b)
        // The version reported is the serving binary's (with --no-restart, not always the installed one's).
        #expect(life.version(of: Self.b) == "2" && life.version(of: Self.c) == nil)
    }

    @Test func forgetAndReject() {
        var life = BinaryLife(probation: .seconds(30))
        #expect(life.handle(.rejected(sha256: Self.c)) == [.persist])
        #expect(life.handle(.rejected(sha256: Self.c)) == [])
        #expect(life.handle(.forgotten(sha256: Self.c)) == [.persist])
        #expect(life.handle(.forgotten(sha256: Self.c)) == [])
    }
}

/// The state file's text: one codec, versioned.
@Suite struct BinaryLifeRecordTests {
    static let a = ProbationTests.a
    static let b = ProbationTests.b

    @Test func roundTrip() throws {
        let record = BinaryLife.Record(program: "/srv/my app/bin", installed: .init(sha256: Self.b, version: "2.0.0 rc%1"),
                                       onTrial: true, lastGood: .init(sha256: Self.a, version: "1.0"),
                                       prior: .init(sha256: Self.b), rejected: [Self.a, Self.b])
        #expect(try BinaryLife.Record(parsing: record.encoded) == record)
        #expect(try BinaryLife.Record(parsing: BinaryLife.Record().encoded) == BinaryLife.Record())
        #expect(!record.encoded.contains("my app"), "spaces are encoded")
    }

    @Test func versionOneIsReadAsTheTrialItDescribes() throws {
        let v1 = "overseerd-state 1\nrejected \(Self.a)\nprobation \(Self.b) 1700000000\nprevious \(Self.a)\nversion 2.0\nprevious-version 1.0\n"
        let record = try BinaryLife.Record(parsing: v1)
        #expect(record.installed == .init(sha256: Self.b, version: "2.0"))
        #expect(record.onTrial)
        #expect(record.lastGood == .init(sha256: Self.a, version: "1.0"))
        #expect(record.rejected == [Self.a])
        let settled = try BinaryLife.Record(parsing: "overseerd-state 1\nprevious \(Self.a)\nversion 2.0\n")
        #expect(settled.prior == .init(sha256: Self.a))
        #expect(!settled.onTrial)
    }

    /// Issue 22, sequence 7: a time that overflowed `now - since` (SIGILL at every start) is one refusal.
    @Test(arguments: ["", "garbage\n", "overseerd-state 3\n", "overseerd-state 2\nrejected xyz\n",
                      "overseerd-state 1\nprobation \(String(repeating: "a", count: 64)) -9223372036854775800\n",
                      "overseerd-state 1\nprobation \(String(repeating: "a", count: 64)) 99999999999999999999999\n",
                      "overseerd-state 1\nprobation \(String(repeating: "a", count: 64)) soon\n",
                      "overseerd-state 2\ntrial\n", "overseerd-state 2\ninstalled \(String(repeating: "a", count: 64)) %G1\n",
                      "overseerd-state 2\nprogram %\n", "overseerd-state 2\nwhat ever\n",
                      "overseerd-state 2\ninstalled \(String(repeating: "a", count: 64)) 1 2\n"])
    func corruptOrForeignFilesAreRefused(text: String) {
        #expect(throws: ConfigurationError.self) { try BinaryLife.Record(parsing: text) }
    }

    @Test func oneFilePerProgram() {
        let one = BinaryLife.Record.fileName(for: "/srv/one/app")
        #expect(one.hasPrefix("upgrades-") && one.count == "upgrades-".count + 16)
        #expect(one != BinaryLife.Record.fileName(for: "/srv/two/app"))
    }
}

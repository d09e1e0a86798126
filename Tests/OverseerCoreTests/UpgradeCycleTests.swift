@testable import OverseerCore
import Testing

@Suite struct UpgradeCycleTests {
    let installed = String(repeating: "a", count: 64)
    let new = String(repeating: "b", count: 64)

    func cycle(steps: [UpgradeCycle.Step] = [.checksum, .check], restart: Bool = true) -> UpgradeCycle {
        UpgradeCycle(steps: steps, interval: .seconds(60), restartAfterInstall: restart)
    }

    @Test func happyPathRunsEveryStepThenInstallsThenRestarts() {
        var machine = cycle()
        #expect(machine.handle(.pollDue) == [.startFetch])
        #expect(machine.handle(.fetched(sha256: new)).filter { if case .log = $0 { false } else { true } } == [.verify(.checksum)])
        #expect(machine.handle(.stepPassed(.checksum)) == [.verify(.check)])
        #expect(machine.handle(.stepPassed(.check)) == [.install(sha256: new)])
        let installedActions = machine.handle(.installed)
        #expect(installedActions.contains(.requestRestart(sha256: new)))
        #expect(machine.state == .restarting(sha256: new))
        let done = machine.handle(.restartFinished(succeeded: true, reason: nil))
        #expect(done.contains(.schedulePoll(after: UpgradeCycle.delay(interval: .seconds(60), failures: 0, jitter: 0.5))))
        #expect(machine.state == .idle)
    }

    @Test func failedStepRejectsAndRemembersTheBytes() {
        var machine = cycle()
        _ = machine.handle(.pollDue)
        _ = machine.handle(.fetched(sha256: new))
        let actions = machine.handle(.stepFailed(.checksum, reason: "sha256 differs"))
        #expect(actions.contains(.discardStaged))
        #expect(!actions.contains { if case .install = $0 { true } else { false } })
        #expect(actions.contains(.log(.error, .upgradeRejected, "upgrade rejected: checksum failed for \(new.prefix(12)): sha256 differs; the installed binary stays", binary: new)))
        #expect(actions.first == .reject(sha256: new), "BinaryLife keeps the rejection")
        // The same bytes again, known to BinaryLife as rejected: skipped without a single check.
        _ = machine.handle(.pollDue)
        let again = machine.handle(.fetched(sha256: new, known: .rejected))
        #expect(again.contains(.discardStaged))
        #expect(!again.contains(.verify(.checksum)))
    }

    /// The rollback and the rejection are `BinaryLife`'s: the cycle only ends.
    @Test func failedRestartEndsTheCycle() {
        var machine = cycle(steps: [])
        _ = machine.handle(.pollDue)
        #expect(machine.handle(.fetched(sha256: new)).contains(.install(sha256: new)))
        _ = machine.handle(.installed)
        let actions = machine.handle(.restartFinished(succeeded: false, reason: nil))
        #expect(actions.contains(.log(.error, .upgradeFailed, "upgrade to \(new.prefix(12)) failed: the new generation did not become ready; the last good binary goes back", binary: new)))
        #expect(machine.state == .idle)
    }

    /// A release verified while the installed binary is on trial waits, staged, until the trial ends.
    @Test func anInstallHeldForATrialGoesOnWhenItEnds() {
        var machine = cycle(steps: [])
        _ = machine.handle(.pollDue)
        #expect(machine.handle(.fetched(sha256: new)) .contains(.install(sha256: new)))
        let held = machine.handle(.installHeld)
        #expect(machine.state == .installHeld(sha256: new))
        #expect(!held.contains(.discardStaged))
        #expect(machine.handle(.pollDue).isEmpty, "a poll waits for the held install")
        #expect(machine.handle(.trialEnded) == [.install(sha256: new)])
        #expect(machine.state == .installing(sha256: new))
        // Out of turn, it does nothing.
        #expect(machine.handle(.trialEnded).isEmpty)
    }

    @Test func noRestartInstallsOnly() {
        var machine = cycle(steps: [], restart: false)
        _ = machine.handle(.pollDue)
        _ = machine.handle(.fetched(sha256: new))
        let actions = machine.handle(.installed)
        #expect(!actions.contains { if case .requestRestart = $0 { true } else { false } })
        #expect(machine.state == .idle)
    }

    @Test func sameBinaryAsInstalledIsNotAnUpgrade() {
        var machine = cycle()
        _ = machine.handle(.pollDue)
        let actions = machine.handle(.fetched(sha256: installed, known: .installed))
        #expect(actions.contains(.discardStaged))
        #expect(machine.state == .idle)
    }

    @Test func pollDuringACycleRunsRightAfterIt() {
        var machine = cycle(steps: [.check])
        _ = machine.handle(.pollDue)
        _ = machine.handle(.fetched(sha256: new))
        #expect(machine.handle(.pollDue).isEmpty)
        let after = machine.handle(.stepFailed(.check, reason: "exit 1"))
        #expect(after.contains(.startFetch))
        #expect(machine.state == .fetching)
    }

    @Test func fetchFailuresBackOffExponentiallyUpToTheInterval() {
        #expect(UpgradeCycle.delay(interval: .seconds(60), failures: 1, jitter: 0.5) == .seconds(2))
        #expect(UpgradeCycle.delay(interval: .seconds(60), failures: 3, jitter: 0.5) == .seconds(8))
        #expect(UpgradeCycle.delay(interval: .seconds(60), failures: 10, jitter: 0.5) == .seconds(60))
        #expect(UpgradeCycle.delay(interval: .seconds(60), failures: 0, jitter: 0) == .seconds(54))
        #expect(UpgradeCycle.delay(interval: .seconds(60), failures: 0, jitter: 1) == .seconds(66))
        var machine = cycle()
        _ = machine.handle(.pollDue)
        let actions = machine.handle(.fetchFailed(reason: "500"), jitter: 0.5)
        #expect(actions.contains(.schedulePoll(after: .seconds(2))))
        #expect(machine.failures == 1)
        _ = machine.handle(.pollDue)
        #expect(machine.handle(.fetchFailed(reason: "500"), jitter: 0.5).contains(.schedulePoll(after: .seconds(4))))
        _ = machine.handle(.pollDue)
        _ = machine.handle(.unchanged)
        #expect(machine.failures == 0)
    }

    @Test func stepsFollowTheSettings() {
        var settings = UpgradeSettings(source: .file(path: "/x"))
        #expect(UpgradeCycle.steps(for: settings) == [.check])
        settings.sha256 = String(repeating: "0", count: 64)
        settings.minisignKey = "RWQ"
        settings.preUpgrade = "true"
        settings.check = .none
        #expect(UpgradeCycle.steps(for: settings) == [.checksum, .signature, .preUpgrade])
    }

    @Test(arguments: [
        ("/srv/app", UpgradeSettings.Source.file(path: "/srv/app")),
        ("file:///srv/app", .file(path: "/srv/app")),
        ("https://example.com/app", .network(url: "https://example.com/app")),
        ("s3://bucket/key/app", .network(url: "s3://bucket/key/app")),
        ("github:owner/repo", .network(url: "github:owner/repo")),
    ])
    func sourcesParse(text: String, expected: UpgradeSettings.Source) throws {
        #expect(try UpgradeSettings.Source(parsing: text) == expected)
    }

    @Test(arguments: ["file://relative", "s3://bucket", "github:owner", "ftp://x/y", ""])
    func badSourcesAreErrors(text: String) {
        #expect(throws: ConfigurationError.self) { try UpgradeSettings.Source(parsing: text) }
    }

    @Test func sizesParse() throws {
        #expect(try ByteSize.parse("1G") == 1 << 30)
        #expect(try ByteSize.parse("500M") == 500 << 20)
        #expect(try ByteSize.parse("1024") == 1024)
        #expect(throws: ConfigurationError.self) { try ByteSize.parse("lots") }
    }
}

import OverseerCore
import OverseerProtocol
import OverseerSystem

extension Supervisor: UpgradeHost {
    /// The program as it would be started now (PATH looked up again).
    func resolvedProgram() throws -> String {
        ProcFS.absolute(try ProgramLocator.resolve(configuration.program, path: environment.dictionary["PATH"]))
    }

    /// overseerd's environment less what systemd meant for overseerd itself.
    var inheritableEnvironment: [String] {
        environment.entries.filter { !EnvironmentName.systemdOwn.contains($0.name) && !$0.name.hasPrefix("OVERSEER_") }
            .map { "\($0.name)=\($0.value)" }
    }

    func upgradeStatusChanged() {
        if let serving = supervision.serving {
            systemd.send(NotifyMessage([("STATUS", serviceStatus(serving: serving))]))
        }
    }

    /// The binaries' life, for the driver to read.
    var binaryLife: BinaryLife { supervision.binaryLife }

    var servingBinary: String? { supervision.serving.flatMap { representative(of: $0)?.binaryID } }

    /// Through the one queue: handled after the event being handled now, if any.
    func binaryLifeEvent(_ event: BinaryLife.Event) { feed(.binaryLife(event)) }

    func whenStateWritten(_ work: @escaping (String?) -> Void) {
        if let binaryLifeStore { binaryLifeStore.whenWritten(work) } else { work(nil) }
    }

    /// The generations on trial that pinged and then stopped for `--probation-watchdog`.
    func generationsThatStoppedPinging() -> [Int] {
        guard let limit = configuration.upgrade?.probationWatchdog else { return [] }
        return supervision.binaryLife.trialGenerations.filter { generation in
            // With --workers, one worker that stopped pinging is its generation failing.
            processes(of: generation).contains {
                WatchdogHealth.stoppedPinging(lastPing: $0.lastWatchdog, now: MonotonicTimer.now, limit: limit)
            }
        }
    }

    /// Puts the last good binary back on a thread of its own (link, hash through
    /// the link, rename, fsync: seconds for a large program on a slow disk), and
    /// reports how it went to `BinaryLife`. Nothing starts until then.
    func rollBack(to target: BinaryLife.Release, replacing bad: BinaryLife.Release) {
        guard let program = upgradeTarget else {
            feed(.binaryLife(.rollbackFinished(restored: nil, failure: "upgrades are off")))
            return
        }
        let expected = target.sha256
        do {
            try reactor.inBackground({ () -> Result<String, Installer.Failure> in
                Result { () throws(Installer.Failure) in try Installer.rollback(program, expectedSHA256: expected) ?? expected }
            }, then: { [unowned self] result in
                switch result {
                case let .success(restored):
                    remember(binaryID: restored, of: program)
                    rollbacks += 1
                    upgrade?.metrics.countRollback()
                    feed(.binaryLife(.rollbackFinished(restored: restored, failure: nil)))
                case let .failure(failure):
                    feed(.binaryLife(.rollbackFinished(restored: nil, failure: failure.description)))
                }
            })
        } catch {
            feed(.binaryLife(.rollbackFinished(restored: nil, failure: "cannot start the rollback: \(error)")))
        }
    }
}

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

    /// While a generation is on probation, checks its WATCHDOG=1 pings (`--probation-watchdog`).
    func watchProbation(every period: Duration, limit: Duration) {
        reactor.cancel(probationWatch)
        probationWatch = reactor.schedule(after: period) { [unowned self] in
            probationWatch = nil
            guard let generation = supervision.probation else { return }
            if WatchdogHealth.stoppedPinging(lastPing: children[generation]?.lastWatchdog, now: MonotonicTimer.now, limit: limit) {
                feed(.probationWatchdogMissed(generation: generation))
            } else {
                watchProbation(every: period, limit: limit)
            }
        }
    }
}

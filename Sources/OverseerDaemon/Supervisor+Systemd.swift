import OverseerCore
import OverseerProtocol
import OverseerSystem

extension Supervisor {
    /// Tells systemd, the control socket and the upgrade driver how overseerd stands.
    func report(_ state: Supervision.ServiceState) {
        if case .ready = state { recoveringFromRollback = false }
        if case let .ready(generation, restartSucceeded?) = state, let outcome = supervision.lastRestart {
            if let binary = spawnedBinaries[outcome.candidate] {
                upgrade?.restartFinished(binary: binary, succeeded: restartSucceeded, reason: outcome.failure)
            }
            let newest = supervision.newestGeneration
            let alive = Set(generationsAlive)
            spawnedBinaries = spawnedBinaries.filter { alive.contains($0.key) || $0.key == newest }
            let message = restartSucceeded
                ? "generation \(generation) is serving (pid \(representative(of: generation).map { String($0.process.pid) } ?? "?"))"
                : "restart failed: \(outcome.failure ?? "generation \(outcome.candidate) did not become ready")"
            lastRestart = RestartRecord(outcome: outcome, at: MonotonicTimer.now, message: message)
            control?.restartFinished(candidate: outcome.candidate, succeeded: restartSucceeded, message: message)
        }
        if case .stopping = state { control?.stopping() }
        var message = NotifyMessage([])
        switch state {
        case let .ready(generation, _):
            message.assignments = [("READY", "1"), ("STATUS", serviceStatus(serving: generation)), ("MAINPID", String(Posix.pid))]
        case .reloading:
            message.assignments = [("RELOADING", "1"),
                                   ("MONOTONIC_USEC", String(MonotonicTimer.now / 1000)),
                                   ("STATUS", "restarting")]
        case .stopping:
            message.assignments = [("STOPPING", "1"), ("STATUS", "stopping")]
        }
        systemd.send(message)
    }

    /// Under systemd, the named TCP/UDP sockets overseerd bound itself go into
    /// the unit's fd store (FDSTORE=1, needs FileDescriptorStoreMax= > 0): should
    /// overseerd itself be restarted, systemd hands them back by name and
    /// overseerd takes them instead of binding again, so the sockets never close.
    func storeListenersWithSystemd() {
        guard systemd.isEnabled, handover == nil else { return }
        // Named TCP/UDP sockets only: a unix socket's file is removed when overseerd
        // exits, and an unnamed socket could not be matched to its --listen again.
        for listener in listeners where listener.origin != .inherited && listener.name != .unnamed
            && (listener.kind == "tcp" || listener.kind == "udp") {
            systemd.send(NotifyMessage([("FDSTORE", "1"), ("FDNAME", listener.name.rawValue)]), passing: listener.fd.rawValue)
        }
    }

    /// The systemd watchdog interval meant for overseerd, if any.
    var watchdogInterval: Duration? {
        let variables = environment.dictionary
        guard let text = variables[EnvironmentName.watchdogUSec], let usec = Int64(text), usec > 0 else { return nil }
        if let pid = variables[EnvironmentName.watchdogPID], pid != String(Posix.pid) { return nil }
        return .microseconds(usec)
    }

    func startWatchdog() {
        guard let interval = watchdogInterval else { return }
        logger.log(.info, .watchdogConfigured, "systemd watchdog every \(interval.shortDescription)\(configuration.watchdogRelay ? ", relayed from the serving child" : "")")
        pingWatchdog(every: interval)
    }

    /// Pings at half the interval while `WatchdogHealth` says overseerd is healthy.
    private func pingWatchdog(every interval: Duration) {
        let healthy = WatchdogHealth.isHealthy(
            relay: configuration.watchdogRelay, now: MonotonicTimer.now, interval: interval,
            servingLastPing: supervision.serving.flatMap { relayedPing(of: $0) }, childrenAlive: !children.isEmpty)
        if healthy { systemd.send(NotifyMessage([("WATCHDOG", "1")])) }
        _ = reactor.schedule(after: interval / 2) { [unowned self] in pingWatchdog(every: interval) }
    }

    /// STATUS= for systemd: who serves, on what, and how the last restart went.
    func serviceStatus(serving generation: Int) -> String {
        guard let child = representative(of: generation) else { return "generation \(generation) gone" }
        var status = "serving generation \(generation) (pid \(child.process.pid), binary \(child.binaryID.prefix(12)))"
        if let lastRestart { status += lastRestart.outcome.succeeded ? "; last restart succeeded" : "; last restart failed" }
        if supervision.binaryLife.trialServing, supervision.binaryLife.trialGenerations.contains(generation) { status += "; new binary on probation" }
        if rollbacks > 0 { status += "; \(rollbacks) upgrade(s) rolled back" }
        if let rollout = upgrade?.rolloutStatus { status += "; \(rollout)" }
        if let childStatus = child.lastStatus { status += ": \(childStatus)" }
        return status
    }
}

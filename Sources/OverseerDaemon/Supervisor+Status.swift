import OverseerCore
import OverseerProtocol
import OverseerSystem

extension Supervisor: ControlTarget {
    private func seconds(since time: Int64) -> Int64 { (MonotonicTimer.now - time) / 1_000_000_000 }
    private static func wholeMilliseconds(_ seconds: Double) -> Int64 { Int64((seconds * 1000).rounded()) }
    private static func milliseconds(_ seconds: Double) -> Duration { .milliseconds(wholeMilliseconds(seconds)) }

    private func state(of generation: Int) -> String {
        if supervision.serving == generation { return "serving" }
        if supervision.candidate == generation { return "starting" }
        return supervision.isStopping(generation) ? "stopping" : "running"
    }

    /// The generation started last (0 before the first).
    var newestGeneration: Int { supervision.newestGeneration }

    /// Asks for a graceful restart, as the restart signal does.
    func requestRestart(reason: String) {
        whenProgramHashed { [unowned self] in feed(.restartRequested(reason: reason)) }
    }

    func forget(_ sha256: String) -> (Bool, String) {
        guard let upgrade else { return (false, "upgrades are not configured: nothing is rejected") }
        guard upgrade.forget(sha256) else { return (false, "\(sha256.prefix(12)) is not among the rejected binaries") }
        logger.log(.notice, .binaryForgotten, "\(sha256.prefix(12)) taken off the rejected binaries (overseerd forget)", binary: sha256)
        return (true, "\(sha256.prefix(12)) may be installed again")
    }

    func forgetKeys(completion: @escaping (Bool, String) -> Void) {
        guard let upgrade else { return completion(false, "upgrades are not configured: there are no manifest keys") }
        upgrade.forgetKeys(completion: completion)
    }

    /// What `overseerd status` prints after its `ok` line.
    func statusText() -> String {
        var lines = ["overseerd pid \(Posix.pid), up \(Duration.seconds(seconds(since: startedAt)).shortDescription), program \(configuration.program)"]
        for generation in generationsAlive {
            guard let child = representative(of: generation) else { continue }
            var line = "generation \(generation) \(state(of: generation)): pid \(child.process.pid), binary \(child.binaryID.prefix(12)), up \(Duration.seconds(seconds(since: child.startedAt)).shortDescription)"
            if let ready = restartMetrics.readiness[generation] { line += ", ready after \(Self.milliseconds(ready).shortDescription)" }
            if let status = child.lastStatus { line += ", status \"\(status)\"" }
            lines.append(line)
        }
        lines += workerStatusLines()
        if let lastRestart {
            let took = restartMetrics.lastRestartDuration.map { " in \(Self.milliseconds($0).shortDescription)" } ?? ""
            lines.append("last restart: \(lastRestart.outcome.succeeded ? "succeeded" : "failed") \(Duration.seconds(seconds(since: lastRestart.at)).shortDescription) ago\(took): \(lastRestart.message)")
        } else {
            lines.append("last restart: none")
        }
        if let upgrade {
            lines.append("upgrades: \(upgrade.summary)\(rollbacks > 0 ? ", \(rollbacks) rolled back" : "")")
            var state: [String] = []
            if let poll = upgrade.metrics.lastPoll {
                state.append("last poll \(Duration.seconds(seconds(since: poll.at)).shortDescription) ago: \(poll.result.rawValue)")
            } else {
                state.append("no poll yet")
            }
            if let pending = upgrade.pendingInstall { state.append("install pending: \(pending)") }
            let life = supervision.binaryLife
            if let trial = life.trialBinary {
                let serving = life.trialServing ? "on probation in generation(s) \(life.trialGenerations.map(String.init).joined(separator: ", "))" : "installed, not yet serving"
                state.append("\(trial.prefix(12)) on trial (\(serving)); last good \(life.lastGood.map { String($0.sha256.prefix(12)) } ?? "none")")
            }
            if life.rollback != nil { state.append("rolling back") }
            lines.append("upgrade state: \(state.joined(separator: ", "))")
        }
        if let orphans {
            lines.append("orphans: \(orphans.reaped) reaped (\(OrphanReaper.isNamespaceInit ? "PID 1 of its PID namespace" : "subreaper"))")
        }
        lines += udpFlowReports.map(\.statusLine)
        let usage = ProcFS.ownUsage()
        lines.append("resources: rss \(usage.residentBytes.map { "\($0 / 1024) kB" } ?? "unknown"), \(usage.openFDs.map(String.init) ?? "unknown") fds, log_lines_dropped \(LogStream.standardError.droppedLines)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// What `overseerd status --json` prints after its `ok` line.
    func statusJSON() -> JSONText {
        let serving = supervision.serving.flatMap { representative(of: $0) }
        var members: [(String, JSONText)] = [
            ("pid", .integer(Int64(Posix.pid))),
            ("uptime_seconds", .integer(seconds(since: startedAt))),
            ("program", .string(configuration.program)),
            ("serving_generation", serving.map { .integer(Int64($0.generation)) } ?? .null),
            ("serving_pid", serving.map { .integer(Int64($0.process.pid)) } ?? .null),
            ("binary_id", serving.map { .string($0.binaryID) } ?? .null),
            ("generations", .array(generationsAlive.compactMap { generation in
                guard let child = representative(of: generation) else { return nil }
                return .object([
                    ("generation", .integer(Int64(generation))), ("pid", .integer(Int64(child.process.pid))),
                    ("state", .string(state(of: generation))), ("binary_id", .string(child.binaryID)),
                    ("uptime_seconds", .integer(seconds(since: child.startedAt))),
                    ("status", child.lastStatus.map { .string($0) } ?? .null),
                    ("ready_ms", restartMetrics.readiness[generation].map { .integer(Self.wholeMilliseconds($0)) } ?? .null),
                ])
            })),
        ]
        if let lastRestart {
            members.append(("last_restart", .object([
                ("result", .string(lastRestart.outcome.succeeded ? "succeeded" : "failed")),
                ("generation", .integer(Int64(lastRestart.outcome.candidate))),
                ("seconds_ago", .integer(seconds(since: lastRestart.at))),
                ("message", .string(lastRestart.message)),
                ("duration_ms", restartMetrics.lastRestartDuration.map { .integer(Self.wholeMilliseconds($0)) } ?? .null),
            ])))
        } else {
            members.append(("last_restart", .null))
        }
        if let upgrade {
            members.append(("upgrades", .string(upgrade.summary)))
            if let pending = upgrade.pendingInstall { members.append(("pending_install", .string(pending))) }
            members.append(("rollbacks", .integer(Int64(rollbacks))))
            members += upgrade.releaseFields
            let life = supervision.binaryLife
            let onProbation = life.trialServing ? supervision.serving.flatMap { life.trialGenerations.contains($0) ? $0 : nil } : nil
            members.append(("on_probation", onProbation.map { .integer(Int64($0)) } ?? .null))
            members.append(("trial_binary", life.trialBinary.map { .string($0) } ?? .null))
            members.append(("last_good_binary", life.lastGood.map { .string($0.sha256) } ?? .null))
            members.append(("rolling_back", .bool(life.rollback != nil)))
            members.append(("last_poll", upgrade.metrics.lastPoll.map { poll in
                .object([("seconds_ago", .integer(seconds(since: poll.at))), ("result", .string(poll.result.rawValue))])
            } ?? .null))
        }
        let udp = udpFlowReports
        if !udp.isEmpty { members.append(("udp_listeners", .array(udp.map(\.json)))) }
        if let workers = workerStatusJSON() { members.append(("workers", workers)) }
        members.append(("orphans_reaped", orphans.map { .integer(Int64($0.reaped)) } ?? .null))
        let usage = ProcFS.ownUsage()
        members.append(("rss_bytes", usage.residentBytes.map { .integer(Int64($0)) } ?? .null))
        members.append(("open_fds", usage.openFDs.map { .integer(Int64($0)) } ?? .null))
        members.append(("log_lines_dropped", .integer(Int64(LogStream.standardError.droppedLines))))
        return .object(members)
    }
}

import OverseerCore
import OverseerProtocol
import OverseerSystem
import SystemPackage

extension Supervisor {
    /// What is under way, for the re-exec gate.
    var activity: DaemonActivity {
        DaemonActivity(supervisionSettled: supervision.isSettled, helpersRunning: helpers.running,
                       backgroundJobs: (upgrade?.backgroundJobs ?? 0) + (binaryLifeStore?.isBusy == true ? 1 : 0), leftoversWaiting: !leftoverCleanup.isEmpty,
                       upgradeIdle: upgrade?.isIdle ?? true)
    }

    /// Re-executes overseerd's binary (as it is on disk now: a package upgrade
    /// may have replaced it), handing over the listeners, the serving child and
    /// the control socket, none of which is closed. `completion` hears of a
    /// refusal or failure; on success this image ends inside exec.
    func requestReexec(reason: String, completion: @escaping (Bool, String) -> Void) {
        if reexecPending {
            completion(false, "a re-exec is already being checked; wait for it")
            return
        }
        if let why = workersRefuseReexec ?? activity.reexecRefusal {
            logger.log(.warning, .reexecRefused, "re-exec (\(reason)) refused: \(why)")
            completion(false, why)
            return
        }
        let path = ProcFS.ownExecutable()
        let check = HandoverState.checkConfigurationFlag
        // The new image parses the same command line and environment after the exec:
        // it must accept them, or it would exit and the child would follow it.
        logger.log(.notice, .reexecStarted, "re-exec (\(reason)): checking that \(path) accepts this command line first (\(check))")
        let request = HelperRequest(label: "new overseerd check", arguments: [path, check] + CommandLine.arguments.dropFirst(),
                                    environment: inheritableEnvironmentForSelf, timeout: .seconds(10))
        do {
            reexecPending = true
            // Upgrade polls wait meanwhile: the exec must find nothing under way.
            upgrade?.hold()
            try helpers.start(request) { [unowned self] result in
                reexecPending = false
                defer { upgrade?.release() }
                guard result.exit == .exited(0) else {
                    let why = "\(path) \(check) ended with \(result.exit) (its reason is logged above); not re-executing"
                    logger.log(.error, .reexecFailed, "re-exec failed: \(why)")
                    completion(false, why)
                    return
                }
                // Asked again now: the check took time, and something may have started meanwhile.
                if let why = workersRefuseReexec ?? activity.reexecRefusal {
                    logger.log(.warning, .reexecRefused, "re-exec (\(reason)) refused: \(why)")
                    completion(false, why)
                    return
                }
                if let records = childOutput?.handoverRecords, !records.isEmpty,
                   !HandoverState.takesOverChildOutput(checkAnswer: result.output) {
                    let why = "\(path) cannot take over the pipes of --child-output capture (an older overseerd); the program would lose its output"
                    logger.log(.warning, .reexecRefused, "re-exec (\(reason)) refused: \(why)")
                    completion(false, why)
                    return
                }
                if !udpFlows.steered.isEmpty, !HandoverState.takesOverUDPFlows(checkAnswer: result.output) {
                    let why = "\(path) cannot take over the steering of UDP flows (an older overseerd); the flows would be lost"
                    logger.log(.warning, .reexecRefused, "re-exec (\(reason)) refused: \(why)")
                    completion(false, why)
                    return
                }
                if configuration.workers.count > 1, !HandoverState.takesOverWorkers(checkAnswer: result.output) {
                    let why = "\(path) cannot take over the workers of --workers \(configuration.workers.count) (an older overseerd); every worker would be lost"
                    logger.log(.warning, .reexecRefused, "re-exec (\(reason)) refused: \(why)")
                    completion(false, why)
                    return
                }
                guard let serving = supervision.serving, let child = representative(of: serving) else {
                    completion(false, "no generation is serving")
                    return
                }
                // "overseerd 0.1.0: the command line is valid"
                let version = result.output.split(separator: "\n").first?.split(separator: " ").dropFirst().first
                    .map { String($0.dropLast($0.hasSuffix(":") ? 1 : 0)) } ?? "?"
                let workers = processes(of: serving)
                let who = workers.count > 1 ? " with its \(workers.count) workers (pids \(workers.map { String($0.process.pid) }.joined(separator: ", ")))" : " (pid \(child.process.pid))"
                completion(true, "re-executing \(path) (version \(version)); generation \(serving)\(who) keeps serving")
                // An image that cannot read the metrics record does not get it: the listener closes with the exec.
                // Nor the binaries' record: it gets the rejected hashes only, as before.
                let failure = reexec(path: path, serving: child,
                                     handingOverMetrics: HandoverState.takesOverMetrics(checkAnswer: result.output),
                                     handingOverBinaryLife: HandoverState.takesOverBinaryLife(checkAnswer: result.output))
                logger.log(.error, .reexecFailed, "re-exec failed: \(failure); this overseerd goes on")
            }
        } catch {
            reexecPending = false
            upgrade?.release()
            completion(false, "cannot run \(path) \(check): \(error)")
        }
    }

    /// Writes the state into a memfd and execs; returns only on failure.
    private func reexec(path: String, serving child: Child, handingOverMetrics: Bool, handingOverBinaryLife: Bool) -> String {
        var state = HandoverState(
            startedAt: startedAt,
            listeners: listeners.map(Handover.record(of:)),
            child: child.handoverRecord,
            controlFD: control?.fd.rawValue, controlPath: control?.path,
            rejected: upgrade?.rejected ?? [],
            metricsListener: handingOverMetrics ? metricsServer.map { Handover.record(of: $0.listener) } : nil,
            childOutput: childOutput?.handoverRecords ?? [],
            binaryLife: handingOverBinaryLife && upgrade != nil ? supervision.binaryLife.record.encoded : nil)
        state.udpFlows = udpFlowHandoverRecords
        state.workers = workerHandoverRecords
        if metricsServer != nil, !handingOverMetrics {
            logger.log(.warning, .metricsEndpoint, "re-exec: \(path) cannot take over the metrics endpoint (an older overseerd); it closes with the exec")
        }
        let memfd: FileDescriptor
        do {
            memfd = try Handover.write(state)
        } catch {
            return "\(error)"
        }
        defer { Posix.close(memfd) }
        let inherited = state.fds + [memfd.rawValue]
        do {
            for fd in inherited { try Posix.setInheritable(fd, true) }
        } catch {
            for fd in inherited { try? Posix.setInheritable(fd, false) }
            return "\(error)"
        }
        childOutput?.flushPartialLines()
        // The next image speaks to systemd after everything this one said.
        systemd.drain(timeout: .seconds(1))
        let environmentEntries = inheritableEnvironmentForSelf + ["\(HandoverState.environmentVariable)=\(memfd.rawValue)"]
        logger.log(.notice, .reexecStarted, "re-executing \(path) with the state in fd \(memfd.rawValue)")
        let errorNumber = Handover.exec(path: path, arguments: [path] + CommandLine.arguments.dropFirst(), environment: environmentEntries)
        // Back to close-on-exec: the next child must not inherit them. F_SETFD on our own open fds cannot fail.
        for fd in inherited { try? Posix.setInheritable(fd, false) }
        return "execve(\(path)): \(SystemError("execve", errno: errorNumber).reason)"
    }

    /// overseerd's own environment as it was given (systemd's variables included), for the next image.
    private var inheritableEnvironmentForSelf: [String] {
        environment.entries.filter { $0.name != HandoverState.environmentVariable }.map { "\($0.name)=\($0.value)" }
    }
}

extension Supervisor.Child {
    /// The process as the next image takes it over: the serving child, or a worker.
    var handoverRecord: HandoverState.ChildRecord {
        .init(generation: generation, pid: process.pid, pidfd: process.pidfd?.rawValue, notifyFD: notify?.fd.rawValue,
              notifyAddress: notify?.address, binaryID: binaryID, startedAt: startedAt, lastStatus: lastStatus,
              lastWatchdog: lastWatchdog)
    }
}

import Glibc
import OverseerCore
import OverseerProtocol
import OverseerSystem
import SystemPackage

extension Supervisor {
    // MARK: - Starting a generation

    /// Starts generation `generation`'s child, or with `--workers` its worker
    /// `worker.number`, kept under `worker.instance` (`Supervisor+Workers`).
    func spawn(_ generation: Int, worker: (instance: Int, number: Int)? = nil) {
        let key = worker?.instance ?? generation
        func failed(exitCode: Int32, reason: String, binary: String?) {
            if let worker {
                raiseWorker(.workerSpawnFailed(instance: worker.instance, exitCode: exitCode, reason: reason, binary: binary))
            } else {
                raise(.childSpawnFailed(generation: generation, exitCode: exitCode, reason: reason, binary: binary))
            }
        }
        let path: String
        do {
            path = try ProgramLocator.resolve(configuration.program, path: environment.dictionary["PATH"])
        } catch {
            // Unreadable or gone: as far as overseerd knows the file there is the binary on trial, if one is.
            failed(exitCode: error.exitCode, reason: error.description, binary: supervision.binaryLife.trialBinary)
            return
        }
        let absolutePath = ProcFS.absolute(path)
        let binaryID = identify(absolutePath)
        spawnedBinaries[generation] = binaryID
        if let expected = upgrade?.expectedBinary, expected != binaryID {
            failed(exitCode: OverseerExitCode.cannotExecute,
                   reason: "\(absolutePath) changed after it was verified (sha256 \(binaryID.prefix(12)), verified \(expected.prefix(12)))",
                   binary: binaryID)
            return
        }
        var notify: NotifyReceiver?
        do {
            notify = try NotifyReceiver(label: worker.map { "\(generation).\($0.number)" } ?? String(generation))
        } catch {
            log(LogLine(.warning, .notifyRejected, "generation \(generation) gets no NOTIFY_SOCKET: \(error)", generation: generation))
        }
        let sockets = ListenFDs(names: listeners.map(\.name))
        let facts = ChildEnvironment.Facts(binaryPath: absolutePath, binaryID: binaryID, generation: generation,
                                           notifySocket: notify?.address,
                                           worker: worker.map { ($0.number, configuration.workers.count) })
        var childEnvironment = ChildEnvironment.entries(inherited: environment.entries, sockets: sockets, facts: facts)
        if configuration.watchdogRelay, let interval = watchdogInterval {
            // The child pings its own notify socket; overseerd passes the pings on.
            childEnvironment.insert("\(EnvironmentName.watchdogUSec)=\(interval.totalNanoseconds / 1000)", at: 0)
        }
        var outputPipes: ChildOutputRelay.Pipes?
        if let childOutput {
            do { outputPipes = try childOutput.makePipes() } catch {
                notify?.close()
                failed(exitCode: OverseerExitCode.systemFailure,
                       reason: "cannot make the pipes for its output (--child-output capture): \(error)", binary: nil)
                return
            }
        }
        let request = ChildProcess.Request(
            path: path,
            arguments: [configuration.program] + configuration.arguments,
            environment: childEnvironment,
            writesListenPID: !listeners.isEmpty,
            fdMap: [-1] + (outputPipes?.childEnds ?? [-1, -1]) + listenerFDs(for: generation),
            newProcessGroup: true,
            parentDeathSignal: configuration.parentDeathSignal)
        let process: ChildProcess
        do {
            process = try spawnProcess(request)
            udpFlowsSpawned(generation, started: true)
        } catch {
            udpFlowsSpawned(generation, started: false)
            notify?.close()
            if let outputPipes { childOutput?.discard(outputPipes) }
            failed(exitCode: error.exitCode, reason: error.description, binary: binaryID)
            return
        }
        if let outputPipes {
            do { try childOutput?.attach(outputPipes, generation: generation, pid: process.pid) } catch {
                log(LogLine(.error, .internalError, "cannot read the output of generation \(generation): \(error)", generation: generation))
            }
        }
        children[key] = Child(generation: generation, process: process, notify: notify, binaryID: binaryID,
                              startedAt: MonotonicTimer.now, worker: worker?.number)
        do {
            try watch(key)
        } catch {
            log(LogLine(.error, .internalError, "cannot watch generation \(generation): \(error)", generation: generation))
        }
        saveBinaryHash()
        if let worker {
            logger.log(.info, .workerStarted, "worker \(worker.number) of generation \(generation) started: pid \(process.pid), \(path) (\(binaryID.prefix(12)))", generation: generation, pid: process.pid, binary: binaryID)
            raiseWorker(.workerSpawned(instance: worker.instance, binary: binaryID))
            return
        }
        logger.log(.info, .generationStarted, "generation \(generation) started: pid \(process.pid), \(path) (\(binaryID.prefix(12)))", generation: generation, pid: process.pid, binary: binaryID)
        raise(.childSpawned(generation: generation, binary: binaryID))
    }

    /// Watches a child's pidfd (its exit) and notify socket; `key` is its generation, or with `--workers` its instance.
    func watch(_ key: Int) throws(SystemError) {
        guard let child = children[key] else { return }
        var watches: [WatchToken] = []
        if let pidfd = child.process.pidfd { watches.append(try reactor.watch(pidfd) { [unowned self] in reap(key) }) }
        if let notify = child.notify {
            watches.append(try reactor.watch(notify.fd) { [unowned self] in readNotifications(key) })
        }
        children[key]?.watches = watches
    }

    // MARK: - A generation's end

    func reap(_ key: Int) {
        guard let child = children[key], child.process.hasExited else { return }
        let generation = child.generation
        takeLeftovers(of: key, child)
        guard let exit = child.process.reap() else { return }
        // Take what the child said before it went (a last STATUS=, say).
        readNotifications(key)
        childOutput?.drain(generation: generation)
        // Its last word is said, however soon after the one before.
        reactor.cancel(statusFlushes.removeValue(forKey: key))
        relayStatus(statusRelay.flush(generation: key, now: MonotonicTimer.now), of: key)
        statusRelay.forget(generation: key)
        for watch in child.watches { reactor.unwatch(watch) }
        child.process.release()
        child.notify?.close()
        children[key] = nil
        for rejection in [NotifyReceiver.Datagram.Rejection.stranger, .oversized, .tooManyDescriptors] {
            notifyWarnings.forget("\(key)/\(rejection.rawValue)")
        }
        if child.worker != nil {
            udpFlowsWorkerEnded(generation)
            workerExited(key, child, exit)
            return
        }
        udpFlowsEnded(generation)
        justReaped = (generation, child.process.pid, child.binaryID)
        feed(.childExited(generation: generation, exit))
        justReaped = nil
    }

    /// Holds by pidfd what an exiting generation left in its process group,
    /// taken while the child is still a zombie, so that its group id cannot be
    /// anyone else's. A process that must outlive its generation leaves the
    /// group (setsid). What becomes of them is `LeftoverCleanup`'s to say.
    /// `key`: the generation, or with `--workers` the worker's instance.
    private func takeLeftovers(of key: Int, _ child: Child) {
        let pid = child.process.pid
        let pids = ProcFS.processGroupMembers(pid).filter { $0 != pid }
        // One already gone is not kept: a later kill(pid) could reach whoever got its pid.
        // Only a kernel without pidfds leaves the plain pid to signal.
        let processes = pids.compactMap { ChildProcess.adoptingIfAlive($0) }
        guard !processes.isEmpty else { return }
        leftovers[key] = processes
        let owner = LeftoverCleanup.Owner(generation: child.generation, worker: child.worker)
        perform(leftoverCleanup.handle(.left(key: key, owner: owner, leader: pid, pids: processes.map(\.pid))))
    }

    /// SIGKILL to what a generation (or a worker, held under its instance: `key`) left behind.
    func killLeftovers(of key: Int, _ owner: LeftoverCleanup.Owner) {
        reactor.cancel(leftoverDeadlines.removeValue(forKey: key))
        guard let processes = leftovers.removeValue(forKey: key) else { return }
        let alive = processes.filter(\.isAlive)
        for process in processes {
            process.signal(SIGKILL)
            process.release()
        }
        if !alive.isEmpty {
            log(LogLine(.warning, .leftoversKilled, "killed \(alive.count) process(es) left by \(owner) (\(alive.map { String($0.pid) }.joined(separator: ", ")))", generation: owner.generation))
        }
    }

    // MARK: - What a generation says

    /// Logs a STATUS= change and passes it on to systemd, at the pace `StatusRelay` allows.
    /// `key`: the generation, or with `--workers` the worker's instance.
    func relayStatus(_ decision: StatusRelay.Decision, of key: Int) {
        let generation = workerPool == nil ? key : children[key]?.generation ?? key
        switch decision {
        case let .show(status, skipped):
            let more = skipped > 0 ? " (after \(skipped) change(s) not logged)" : ""
            let who = children[key]?.worker.map { "worker \($0) of generation \(generation)" } ?? "generation \(generation)"
            log(LogLine(.info, .childStatus, "\(who) status: \(status)\(more)", generation: generation))
            if supervision.serving == generation, workerPool == nil || children[key]?.worker == 0 {
                systemd.send(NotifyMessage([("STATUS", serviceStatus(serving: generation))]))
            }
        case let .hold(flushAfter?):
            statusFlushes[key] = reactor.schedule(after: flushAfter) { [unowned self] in
                statusFlushes[key] = nil
                relayStatus(statusRelay.flush(generation: key, now: MonotonicTimer.now), of: key)
            }
        case .hold(nil), .unchanged:
            break
        }
    }

    /// `key`: the generation, or with `--workers` the worker's instance.
    func readNotifications(_ key: Int) {
        guard let child = children[key], let notify = child.notify else { return }
        let generation = child.generation
        // The sender is checked as each datagram is taken: a short-lived sender
        // (systemd-notify) may be gone by the time later ones are read.
        for datagram in notify.receiveAll(checkingSender: { ProcFS.isDescendant($0, of: child.process.pid) }) {
            // systemd-notify's BARRIER=1 (sent with an fd, which we close) asks for nothing.
            if datagram.message.assignments.allSatisfy({ $0.key == "BARRIER" }) { continue }
            if let rejection = datagram.rejection {
                // Rate-limited: anyone who can reach the socket could otherwise flood the log.
                let (show, heldBack) = notifyWarnings.admit("\(key)/\(rejection.rawValue)", now: MonotonicTimer.now)
                guard show else { continue }
                let more = heldBack > 0 ? " (\(heldBack) more like it dropped since the last such line)" : ""
                switch rejection {
                case .stranger:
                    log(LogLine(.warning, .notifyRejected, "ignored a notify message for generation \(generation) from pid \(datagram.senderPID): not its child or one of its processes\(more)", generation: generation))
                case .oversized:
                    log(LogLine(.warning, .notifyRejected, "generation \(generation) sent a notify message over \(NotifyReceiver.maximumLength) bytes; ignored\(more)", generation: generation))
                case .tooManyDescriptors:
                    log(LogLine(.warning, .notifyRejected, "generation \(generation) sent a notify message with more file descriptors than one may carry (all were closed); ignored\(more)", generation: generation))
                }
                continue
            }
            let message = datagram.message
            if let status = message.status.map({ EscapedText.escape($0) }), status != children[key]?.lastStatus {
                children[key]?.lastStatus = status
                relayStatus(statusRelay.received(status, generation: key, now: MonotonicTimer.now), of: key)
            }
            if message.isStopping, children[key]?.saidStopping == false {
                children[key]?.saidStopping = true
                log(LogLine(.info, .childStopping, "\(child.worker.map { "worker \($0) of " } ?? "")generation \(generation) is stopping", generation: generation))
            }
            if message.isWatchdogPing { children[key]?.lastWatchdog = MonotonicTimer.now }
            if message.isReady {
                if child.worker != nil {
                    if children[key]?.readyAt == nil { children[key]?.readyAt = MonotonicTimer.now }
                    feedWorker(.workerReady(instance: key))
                } else {
                    feed(.childReady(generation: generation))
                }
            }
        }
    }
}

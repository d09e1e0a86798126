import Glibc
import OverseerCore
import OverseerProtocol
import OverseerSystem
import SystemPackage

extension Supervisor {
    // MARK: - Starting a generation

    func spawn(_ generation: Int) {
        let path: String
        do {
            path = try ProgramLocator.resolve(configuration.program, path: environment.dictionary["PATH"])
        } catch {
            // Unreadable or gone: as far as overseerd knows the file there is the binary on trial, if one is.
            raise(.childSpawnFailed(generation: generation, exitCode: error.exitCode, reason: error.description,
                                    binary: supervision.binaryLife.trialBinary))
            return
        }
        let absolutePath = ProcFS.absolute(path)
        let binaryID = identify(absolutePath)
        spawnedBinaries[generation] = binaryID
        if let expected = upgrade?.expectedBinary, expected != binaryID {
            raise(.childSpawnFailed(generation: generation, exitCode: OverseerExitCode.cannotExecute,
                                    reason: "\(absolutePath) changed after it was verified (sha256 \(binaryID.prefix(12)), verified \(expected.prefix(12)))",
                                    binary: binaryID))
            return
        }
        var notify: NotifyReceiver?
        do {
            notify = try NotifyReceiver(label: String(generation))
        } catch {
            log(LogLine(.warning, .notifyRejected, "generation \(generation) gets no NOTIFY_SOCKET: \(error)", generation: generation))
        }
        let sockets = ListenFDs(names: listeners.map(\.name))
        let facts = ChildEnvironment.Facts(binaryPath: absolutePath, binaryID: binaryID, generation: generation,
                                           notifySocket: notify?.address)
        var childEnvironment = ChildEnvironment.entries(inherited: environment.entries, sockets: sockets, facts: facts)
        if configuration.watchdogRelay, let interval = watchdogInterval {
            // The child pings its own notify socket; overseerd passes the pings on.
            childEnvironment.insert("\(EnvironmentName.watchdogUSec)=\(interval.totalNanoseconds / 1000)", at: 0)
        }
        var outputPipes: ChildOutputRelay.Pipes?
        if let childOutput {
            do { outputPipes = try childOutput.makePipes() } catch {
                notify?.close()
                raise(.childSpawnFailed(generation: generation, exitCode: OverseerExitCode.systemFailure,
                                        reason: "cannot make the pipes for its output (--child-output capture): \(error)"))
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
            raise(.childSpawnFailed(generation: generation, exitCode: error.exitCode, reason: error.description, binary: binaryID))
            return
        }
        if let outputPipes {
            do { try childOutput?.attach(outputPipes, generation: generation, pid: process.pid) } catch {
                log(LogLine(.error, .internalError, "cannot read the output of generation \(generation): \(error)", generation: generation))
            }
        }
        children[generation] = Child(generation: generation, process: process, notify: notify, binaryID: binaryID,
                                     startedAt: MonotonicTimer.now)
        do {
            try watch(generation)
        } catch {
            log(LogLine(.error, .internalError, "cannot watch generation \(generation): \(error)", generation: generation))
        }
        logger.log(.info, .generationStarted, "generation \(generation) started: pid \(process.pid), \(path) (\(binaryID.prefix(12)))", generation: generation, pid: process.pid, binary: binaryID)
        saveBinaryHash()
        raise(.childSpawned(generation: generation, binary: binaryID))
    }

    /// Watches a generation's pidfd (its exit) and notify socket.
    func watch(_ generation: Int) throws(SystemError) {
        guard let child = children[generation] else { return }
        var watches: [WatchToken] = []
        if let pidfd = child.process.pidfd { watches.append(try reactor.watch(pidfd) { [unowned self] in reap(generation) }) }
        if let notify = child.notify {
            watches.append(try reactor.watch(notify.fd) { [unowned self] in readNotifications(generation) })
        }
        children[generation]?.watches = watches
    }

    // MARK: - A generation's end

    func reap(_ generation: Int) {
        guard let child = children[generation], child.process.hasExited else { return }
        takeLeftovers(of: generation, child)
        guard let exit = child.process.reap() else { return }
        // Take what the child said before it went (a last STATUS=, say).
        readNotifications(generation)
        childOutput?.drain(generation: generation)
        // Its last word is said, however soon after the one before.
        reactor.cancel(statusFlushes.removeValue(forKey: generation))
        relayStatus(statusRelay.flush(generation: generation, now: MonotonicTimer.now), of: generation)
        statusRelay.forget(generation: generation)
        for watch in child.watches { reactor.unwatch(watch) }
        child.process.release()
        child.notify?.close()
        children[generation] = nil
        for rejection in [NotifyReceiver.Datagram.Rejection.stranger, .oversized, .tooManyDescriptors] {
            notifyWarnings.forget("\(generation)/\(rejection.rawValue)")
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
    private func takeLeftovers(of generation: Int, _ child: Child) {
        let pid = child.process.pid
        let pids = ProcFS.processGroupMembers(pid).filter { $0 != pid }
        // One already gone is not kept: a later kill(pid) could reach whoever got its pid.
        // Only a kernel without pidfds leaves the plain pid to signal.
        let processes = pids.compactMap { ChildProcess.adoptingIfAlive($0) }
        guard !processes.isEmpty else { return }
        leftovers[generation] = processes
        perform(leftoverCleanup.handle(.left(generation: generation, leader: pid, pids: processes.map(\.pid))))
    }

    /// SIGKILL to what a generation left behind.
    func killLeftovers(of generation: Int) {
        reactor.cancel(leftoverDeadlines.removeValue(forKey: generation))
        guard let processes = leftovers.removeValue(forKey: generation) else { return }
        let alive = processes.filter(\.isAlive)
        for process in processes {
            process.signal(SIGKILL)
            process.release()
        }
        if !alive.isEmpty {
            log(LogLine(.warning, .leftoversKilled, "killed \(alive.count) process(es) left by generation \(generation) (\(alive.map { String($0.pid) }.joined(separator: ", ")))", generation: generation))
        }
    }

    // MARK: - What a generation says

    /// Logs a STATUS= change and passes it on to systemd, at the pace `StatusRelay` allows.
    func relayStatus(_ decision: StatusRelay.Decision, of generation: Int) {
        switch decision {
        case let .show(status, skipped):
            let more = skipped > 0 ? " (after \(skipped) change(s) not logged)" : ""
            log(LogLine(.info, .childStatus, "generation \(generation) status: \(status)\(more)", generation: generation))
            if supervision.serving == generation {
                systemd.send(NotifyMessage([("STATUS", serviceStatus(serving: generation))]))
            }
        case let .hold(flushAfter?):
            statusFlushes[generation] = reactor.schedule(after: flushAfter) { [unowned self] in
                statusFlushes[generation] = nil
                relayStatus(statusRelay.flush(generation: generation, now: MonotonicTimer.now), of: generation)
            }
        case .hold(nil), .unchanged:
            break
        }
    }

    func readNotifications(_ generation: Int) {
        guard let child = children[generation], let notify = child.notify else { return }
        // The sender is checked as each datagram is taken: a short-lived sender
        // (systemd-notify) may be gone by the time later ones are read.
        for datagram in notify.receiveAll(checkingSender: { ProcFS.isDescendant($0, of: child.process.pid) }) {
            // systemd-notify's BARRIER=1 (sent with an fd, which we close) asks for nothing.
            if datagram.message.assignments.allSatisfy({ $0.key == "BARRIER" }) { continue }
            if let rejection = datagram.rejection {
                // Rate-limited: anyone who can reach the socket could otherwise flood the log.
                let (show, heldBack) = notifyWarnings.admit("\(generation)/\(rejection.rawValue)", now: MonotonicTimer.now)
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
            if let status = message.status.map({ EscapedText.escape($0) }), status != children[generation]?.lastStatus {
                children[generation]?.lastStatus = status
                relayStatus(statusRelay.received(status, generation: generation, now: MonotonicTimer.now), of: generation)
            }
            if message.isStopping, children[generation]?.saidStopping == false {
                children[generation]?.saidStopping = true
                log(LogLine(.info, .childStopping, "generation \(generation) is stopping", generation: generation))
            }
            if message.isWatchdogPing { children[generation]?.lastWatchdog = MonotonicTimer.now }
            if message.isReady { feed(.childReady(generation: generation)) }
        }
    }
}

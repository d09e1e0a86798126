import Glibc
import OverseerCore
import OverseerSystem

/// Reaping orphans as PID 1 of a PID namespace (a container) or as a child
/// subreaper (`--subreaper`). What may be reaped is `OrphanReaping`'s to say:
/// only a pid that is neither a generation's nor a helper's. Those keep their
/// own reap (`waitid(P_PIDFD)` on their pidfd, in `reap(_:)` and
/// `HelperRunner`), and all of it runs on the loop's one thread, so an owned
/// pid is never peeked and reaped by the sweep between its spawn and its
/// registration, nor reaped under its owner.
extension Supervisor {
    /// Turns reaping on when overseerd is PID 1 or was given `--subreaper`:
    /// before the first spawn, so that no orphan of the child goes elsewhere.
    func startReapingOrphans() {
        let asInit = OrphanReaper.isNamespaceInit
        guard asInit || configuration.subreaper else { return }
        if !asInit {
            do {
                try OrphanReaper.becomeSubreaper()
            } catch {
                logger.log(.warning, .reapingOrphans, "cannot become a child subreaper: \(error); orphans of the child are not reaped by overseerd")
                return
            }
        }
        orphans = OrphanReaping()
        if handover == nil {
            logger.log(.info, .reapingOrphans, asInit ? "PID 1 of its PID namespace: reaping orphans, passing signals on" : "child subreaper: reaping orphans")
        }
    }

    /// One sweep: every exited child that nobody owns is reaped; an owned one
    /// is handed to its owner first, so that it does not hide the ones behind it.
    func reapOrphans() {
        guard orphans != nil else { return }
        orphans?.sweepStarted()
        while true {
            let pid: Int32?
            do { pid = try OrphanReaper.peekExited() } catch {
                logger.log(.error, .internalError, "\(error)")
                return
            }
            guard let step = orphans?.peeked(pid, owner: owner(of: pid)) else { return }
            switch step {
            case let .reap(pid):
                do {
                    if let exit = try OrphanReaper.reap(pid), let line = orphans?.reaped(pid: pid, exit: exit) { log(line) }
                } catch {
                    logger.log(.error, .internalError, "\(error)")
                    return
                }
            case let .handOver(_, .generation(generation)):
                reap(generation)
            case .handOver(_, .helper):
                helpers.reapExited()
            case .handOver(_, .none), .done:
                return
            case .continueLater:
                _ = reactor.schedule(after: .zero) { [unowned self] in reapOrphans() }
                return
            }
        }
    }

    private func owner(of pid: Int32?) -> OrphanReaping.Owner {
        guard let pid else { return .none }
        if let child = children.values.first(where: { $0.process.pid == pid }) { return .generation(child.generation) }
        return helpers.owns(pid) ? .helper : .none
    }

    /// As PID 1, overseerd's exit would SIGKILL everything left in the
    /// namespace: first the stop signal, then SIGKILL, every one reaped. The
    /// generations and helpers are gone or killed by now. After a stop signal
    /// (the platform's `docker stop`, a pod's deletion) the stop signal's
    /// `--stop-timeout` is the whole budget, so that overseerd exits within it
    /// (at least a second is left for the rest); after the child ended on its
    /// own, what is left gets a `--stop-timeout` of its own.
    func emptyNamespaceIfInit() {
        guard OrphanReaper.isNamespaceInit else { return }
        var count = reapEveryExited()
        guard OrphanReaper.hasChildren else { return }
        OrphanReaper.signalEveryOtherProcess(configuration.stopSignal)
        OrphanReaper.signalEveryOtherProcess(SIGCONT)
        var grace = configuration.stopTimeout
        if let since = stopSignalledAt {
            grace = max(.nanoseconds(since + configuration.stopTimeout.totalNanoseconds - MonotonicTimer.now), .seconds(1))
        }
        count += reapUntilNoChildren(within: grace)
        var killed = false
        if OrphanReaper.hasChildren {
            killed = true
            OrphanReaper.signalEveryOtherProcess(SIGKILL)
            count += reapUntilNoChildren(within: .seconds(5))
        }
        let how = killed ? "SIGKILL after \(grace.shortDescription)" : SignalNumber.name(configuration.stopSignal)
        logger.log(killed ? .warning : .info, .namespaceEmptied, "stopped \(count) process(es) left in the PID namespace (\(how))")
    }

    private func reapUntilNoChildren(within limit: Duration) -> Int {
        let deadline = MonotonicTimer.now + limit.totalNanoseconds
        var count = reapEveryExited()
        while OrphanReaper.hasChildren, MonotonicTimer.now < deadline {
            OrphanReaper.waitForChildExit(timeout: .nanoseconds(deadline - MonotonicTimer.now))
            count += reapEveryExited()
        }
        return count
    }

    /// Reaps every exited child; at exit nobody else is waiting for a status.
    private func reapEveryExited() -> Int {
        var count = 0
        while let pid = try? OrphanReaper.peekExited(), (try? OrphanReaper.reap(pid)) != nil { count += 1 }
        return count
    }
}

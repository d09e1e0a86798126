import Glibc
import OverseerCore
import OverseerSystem

extension Supervisor {
    /// Turns the signals overseerd received into events.
    func readSignals() {
        while true {
            let next: SignalSource.Received?
            do { next = try signalSource.next() } catch {
                logger.log(.error, .internalError, "\(error)")
                return
            }
            guard let next else { return }
            let (signal, sender) = (next.signal, next.sender)
            if SignalOrigin.of(signal: signal, code: next.code, sender: sender, ownPID: Posix.pid) == .raisedAgainstItself {
                keep(signal)
                continue
            }
            if signal == SIGCHLD {
                // Kernels without pidfd tell us this way; with pidfds it is harmless.
                for generation in children.keys.sorted() { reap(generation) }
                helpers.reapExited()
                reapOrphans()
            } else if signal == configuration.reexecSignal {
                requestReexec(reason: "\(SignalNumber.name(signal)) from pid \(sender)") { _, _ in }
            } else if signal == configuration.restartSignal {
                requestRestart(reason: "\(SignalNumber.name(signal)) from pid \(sender)")
            } else if SignalNumber.stopping.contains(signal) {
                if stopSignalledAt == nil { stopSignalledAt = MonotonicTimer.now }
                feed(.stopRequested(signal: signal))
            } else {
                feed(.signalReceived(signal))
            }
        }
    }

    /// A signal the kernel raised against overseerd itself (see `SignalOrigin`):
    /// never forwarded. The write that caused a SIGPIPE or SIGXFSZ failed (EPIPE,
    /// EFBIG) and says so where it happened. SIGPIPE is not logged, and the others
    /// at most once a minute each: the log line could raise the same signal again
    /// (stderr a closed pipe, or a file at its size limit), which must not become a loop.
    private func keep(_ signal: Int32) {
        guard signal != SIGPIPE else { return }
        let admitted = KeptSignals.throttle.admit(String(signal), now: MonotonicTimer.now)
        guard admitted.show else { return }
        let why = switch signal {
        case SIGXFSZ: "a write went over the file size limit, ulimit -f / LimitFSIZE="
        case SIGXCPU: "overseerd went over its CPU time limit, ulimit -t / LimitCPU="
        default: "a seccomp filter trapped a system call, SystemCallFilter="
        }
        let more = admitted.heldBack > 0 ? " (and \(admitted.heldBack) more since the last line)" : ""
        logger.log(.warning, .signalKept, "\(SignalNumber.name(signal)) raised against overseerd itself (\(why)): not passed on to the program\(more)")
    }
}

/// The throttle of `keep`: read and written on the event loop's thread only.
private enum KeptSignals {
    nonisolated(unsafe) static var throttle = WarningThrottle(interval: .seconds(60))
}

import Glibc
import OverseerCore
import OverseerSystem

extension Supervisor {
    /// Turns the signals overseerd received into events.
    func readSignals() {
        while true {
            let next: (signal: Int32, sender: Int32)?
            do { next = try signalSource.next() } catch {
                logger.log(.error, .internalError, "\(error)")
                return
            }
            guard let (signal, sender) = next else { return }
            if signal == SIGPIPE, sender == 0 || sender == Posix.pid {
                // Raised by our own write to a closed stderr: not for the child.
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
                feed(.restartRequested(reason: "\(SignalNumber.name(signal)) from pid \(sender)"))
            } else if SignalNumber.stopping.contains(signal) {
                if stopSignalledAt == nil { stopSignalledAt = MonotonicTimer.now }
                feed(.stopRequested(signal: signal))
            } else {
                feed(.signalReceived(signal))
            }
        }
    }
}

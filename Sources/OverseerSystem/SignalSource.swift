import COverseerShims
import SystemPackage

/// Signals taken synchronously: every catchable signal is blocked (by
/// `blockAllSignals`, first thing in main) and read from a signalfd.
public struct SignalSource: Sendable {
    public let fd: FileDescriptor

    /// Resets every catchable signal to its default disposition and blocks them
    /// all in the calling thread. Call it before any other thread exists, so
    /// that every thread inherits the mask and no signal is delivered the usual way.
    public static func blockAllSignals() {
        overseer_block_all_signals()
    }

    public init() throws(SystemError) {
        let fd = overseer_signalfd_all()
        guard fd >= 0 else { throw .last("signalfd") }
        self.fd = FileDescriptor(rawValue: fd)
    }

    /// One signal read: its number, the pid that sent it (0 for the kernel)
    /// and its `ssi_code` (`SI_USER`, `SI_KERNEL`, a signal-specific code, ...).
    public struct Received: Equatable, Sendable {
        public var signal: Int32
        public var sender: Int32
        public var code: Int32
    }

    /// The next pending signal, or nil when none is pending.
    public func next() throws(SystemError) -> Received? {
        var received = Received(signal: 0, sender: 0, code: 0)
        let rc = overseer_signalfd_read(fd.rawValue, &received.signal, &received.sender, &received.code)
        if rc < 0 { throw .last("read(signalfd)") }
        return rc == 1 ? received : nil
    }
}

/// Ends the process with `signal`'s default action and no core file; a
/// signal whose default does not end a process gives exit status 128 + signal.
public func dieBySignal(_ signal: Int32) -> Never {
    overseer_die_by_signal(signal)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import OverseerCore
import OverseerProtocol
import OverseerSystem

/// The daemon: one thread, one epoll loop, one owner of all state. Events
/// from the kernel (signals, child exits, notify datagrams, timers) are turned
/// into `Supervision` events; the actions it returns are carried out here.
public final class Supervisor {
    /// A child process of one generation and what overseerd keeps for it.
    struct Child {
        let generation: Int
        let process: ChildProcess
        let notify: NotifyReceiver?
        let binaryID: String
        var lastStatus: String?
    }

    private enum Token {
        static let signals: UInt64 = 1
        static let timer: UInt64 = 2
        static func pidfd(_ generation: Int) -> UInt64 { UInt64(generation) << 8 | 3 }
        static func notify(_ generation: Int) -> UInt64 { UInt64(generation) << 8 | 4 }
    }

    private let configuration: Configuration
    private let environment: ProcessEnvironment
    private let listeners: [Listener]
    private let logger: Logger
    private let systemd: SystemdNotifier
    private let loop: EventLoop
    private let signals: SignalSource
    private let timer: MonotonicTimer
    private var supervision: Supervision
    private var children: [Int: Child] = [:]
    private var deadlines: [Supervision.Timer: Int64] = [:]
    private var binaryIDCache: (key: [Int], id: String)?
    private var pending: [Supervision.Event] = []

    /// Sets up the loop around listeners that are already bound.
    public init(configuration: Configuration, environment: ProcessEnvironment, listeners: [Listener],
                logger: Logger) throws(SystemError) {
        self.configuration = configuration
        self.environment = environment
        self.listeners = listeners
        self.logger = logger
        self.systemd = SystemdNotifier(environment: environment.dictionary)
        self.loop = try EventLoop()
        self.signals = try SignalSource()
        self.timer = try MonotonicTimer()
        self.supervision = Supervision(settings: .init(configuration))
        try loop.watch(signals.fd, token: Token.signals)
        try loop.watch(timer.fd, token: Token.timer)
    }

    /// Starts the first child and serves until overseerd is to exit; never returns.
    public func run() -> Never {
        feed(.started)
        while true {
            let tokens: [UInt64]
            do {
                tokens = try loop.wait()
            } catch {
                logger.critical("\(error) — overseerd cannot go on watching its child")
                exitNow(.exited(OverseerExitCode.systemFailure))
            }
            for token in tokens { dispatch(token) }
        }
    }

    // MARK: - Kernel events

    private func dispatch(_ token: UInt64) {
        switch token {
        case Token.signals:
            readSignals()
        case Token.timer:
            timer.acknowledge()
            fireDueTimers()
        default:
            let generation = Int(token >> 8)
            switch token & 0xff {
            case 3: reap(generation)
            case 4: readNotifications(generation)
            default: break
            }
        }
    }

    private func readSignals() {
        while true {
            let next: (signal: Int32, sender: Int32)?
            do { next = try signals.next() } catch {
                logger.error("\(error)")
                return
            }
            guard let (signal, sender) = next else { return }
            if signal == SIGCHLD {
                // Kernels without pidfd tell us this way; with pidfds it is harmless.
                for generation in children.keys.sorted() { reap(generation) }
            } else if signal == configuration.restartSignal {
                feed(.restartRequested(reason: "\(SignalNumber.name(signal)) from pid \(sender)"))
            } else if SignalNumber.stopping.contains(signal) {
                feed(.stopRequested(signal: signal))
            } else {
                feed(.signalReceived(signal))
            }
        }
    }

    private func reap(_ generation: Int) {
        guard let child = children[generation], let exit = child.process.reap() else { return }
        if let pidfd = child.process.pidfd { loop.unwatch(pidfd) }
        child.process.release()
        if let notify = child.notify {
            // Take what the child said before it went (a last STATUS=, say).
            readNotifications(generation)
            loop.unwatch(notify.fd)
            notify.close()
        }
        children[generation] = nil
        feed(.childExited(generation: generation, exit))
    }

    private func readNotifications(_ generation: Int) {
        guard let child = children[generation], let notify = child.notify else { return }
        for datagram in notify.receiveAll() {
            guard isSentByChild(datagram.senderPID, of: child.process.pid) else {
                logger.warning("ignored a notify message for generation \(generation) from pid \(datagram.senderPID): not its child or one of its processes")
                continue
            }
            if datagram.truncated {
                logger.warning("generation \(generation) sent a notify message over \(NotifyReceiver.maximumLength) bytes; ignored")
                continue
            }
            let message = datagram.message
            if let status = message.status, status != children[generation]?.lastStatus {
                children[generation]?.lastStatus = status
                logger.info("generation \(generation) status: \(status)")
            }
            if message.isStopping { logger.info("generation \(generation) is stopping") }
            if message.isReady { feed(.childReady(generation: generation)) }
        }
    }

    /// The child itself, or a process it started (a shell script's `systemd-notify`, say).
    private func isSentByChild(_ sender: Int32, of child: Int32) -> Bool {
        var pid = sender
        for _ in 0 ..< 16 {
            if pid == child { return true }
            guard pid > 1, let parent = ProcFS.parentPID(of: pid) else { return false }
            pid = parent
        }
        return false
    }

    private func fireDueTimers() {
        let now = MonotonicTimer.now
        let due = deadlines.filter { $0.value <= now }.sorted { $0.value < $1.value }
        for (timer, _) in due {
            deadlines[timer] = nil
            feed(.timerFired(timer))
        }
        rearmTimer()
    }

    private func rearmTimer() {
        do { try timer.arm(at: deadlines.values.min()) } catch { logger.error("\(error)") }
    }

    // MARK: - Actions

    private func feed(_ event: Supervision.Event) {
        pending.append(event)
        // Events raised while acting (a spawn's result) are handled in order, after the current ones.
        guard pending.count == 1 else { return }
        while let next = pending.first {
            for action in supervision.handle(next) { perform(action) }
            pending.removeFirst()
        }
    }

    private func perform(_ action: Supervision.Action) {
        switch action {
        case let .spawnChild(generation):
            spawn(generation)
        case let .signalChild(generation, signal):
            guard let child = children[generation] else { return }
            logger.debug("sending \(SignalNumber.name(signal)) to generation \(generation) (pid \(child.process.pid))")
            child.process.signal(signal)
        case let .startTimer(timer, after):
            deadlines[timer] = MonotonicTimer.now + after.totalNanoseconds
            rearmTimer()
        case let .cancelTimer(timer):
            if deadlines.removeValue(forKey: timer) != nil { rearmTimer() }
        case let .report(state):
            report(state)
        case let .log(level, message):
            switch level {
            case .debug: logger.debug("\(message)")
            case .info: logger.info("\(message)")
            case .notice: logger.notice("\(message)")
            case .warning: logger.warning("\(message)")
            case .error: logger.error("\(message)")
            }
        case let .exit(status):
            exitNow(status)
        }
    }

    private func spawn(_ generation: Int) {
        let path: String
        do {
            path = try ProgramLocator.resolve(configuration.program, path: environment.dictionary["PATH"])
        } catch {
            pending.append(.childSpawnFailed(generation: generation, exitCode: error.exitCode, reason: error.description))
            return
        }
        let absolutePath = ProcFS.absolute(path)
        let binaryID = identify(absolutePath)
        var notify: NotifyReceiver?
        do {
            notify = try NotifyReceiver(label: String(generation))
        } catch {
            logger.warning("generation \(generation) gets no NOTIFY_SOCKET: \(error)")
        }
        let sockets = ListenFDs(names: listeners.map(\.name))
        let facts = ChildEnvironment.Facts(binaryPath: absolutePath, binaryID: binaryID, generation: generation,
                                           notifySocket: notify?.address)
        let request = ChildProcess.Request(
            path: path,
            arguments: [configuration.program] + configuration.arguments,
            environment: ChildEnvironment.entries(inherited: environment.entries, sockets: sockets, facts: facts),
            writesListenPID: !listeners.isEmpty,
            fdMap: [-1, -1, -1] + listeners.map(\.fd.rawValue),
            newProcessGroup: true,
            parentDeathSignal: configuration.parentDeathSignal)
        let process: ChildProcess
        do {
            process = try ChildProcess.spawn(request)
        } catch {
            notify?.close()
            pending.append(.childSpawnFailed(generation: generation, exitCode: error.exitCode, reason: error.description))
            return
        }
        do {
            if let pidfd = process.pidfd { try loop.watch(pidfd, token: Token.pidfd(generation)) }
            if let notify { try loop.watch(notify.fd, token: Token.notify(generation)) }
        } catch {
            logger.error("cannot watch generation \(generation): \(error)")
        }
        children[generation] = Child(generation: generation, process: process, notify: notify, binaryID: binaryID)
        logger.info("generation \(generation) started: pid \(process.pid), \(path) (\(binaryID.prefix(12)))")
        pending.append(.childSpawned(generation: generation))
    }

    /// The program's SHA-256, hashed again only when the file changed.
    private func identify(_ path: String) -> String {
        let key = ProcFS.fileIdentity(path)
        if let cache = binaryIDCache, cache.key == key { return cache.id }
        do {
            let id = try BinaryIdentity.sha256(ofFileAt: path)
            binaryIDCache = (key, id)
            return id
        } catch {
            logger.warning("cannot hash \(path) for OVERSEER_BINARY_ID: \(error)")
            return ""
        }
    }

    private func report(_ state: Supervision.ServiceState) {
        var message = NotifyMessage([])
        switch state {
        case let .ready(generation, restartSucceeded):
            let pid = children[generation].map { String($0.process.pid) } ?? "?"
            var status = "serving generation \(generation) (pid \(pid))"
            switch restartSucceeded {
            case true?: status += "; last restart succeeded"
            case false?: status += "; last restart failed"
            case nil: break
            }
            message.assignments = [("READY", "1"), ("STATUS", status), ("MAINPID", String(getpid()))]
        case .reloading:
            message.assignments = [("RELOADING", "1"),
                                   ("MONOTONIC_USEC", String(MonotonicTimer.now / 1000)),
                                   ("STATUS", "restarting")]
        case .stopping:
            message.assignments = [("STOPPING", "1"), ("STATUS", "stopping")]
        }
        systemd.send(message)
    }

    private func exitNow(_ status: ProcessExit) -> Never {
        for child in children.values { child.notify?.close() }
        ListenerBinder.close(listeners)
        switch status {
        case let .exited(code):
            exit(code)
        case let .killed(signal):
            dieBySignal(signal)
        }
    }
}

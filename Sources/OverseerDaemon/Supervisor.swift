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
        let startedAt: Int64
        var lastStatus: String?
        /// When it last sent WATCHDOG=1.
        var lastWatchdog: Int64?
    }

    /// How the last restart ended, for `status` and STATUS=.
    struct RestartResult {
        let succeeded: Bool
        let generation: Int
        let at: Int64
        let message: String
    }

    private enum Token {
        static let signals: UInt64 = 1
        static let timer: UInt64 = 2
        static func pidfd(_ generation: Int) -> UInt64 { UInt64(generation) << 8 | 3 }
        static func notify(_ generation: Int) -> UInt64 { UInt64(generation) << 8 | 4 }
    }

    let configuration: Configuration
    let environment: ProcessEnvironment
    private let listeners: [Listener]
    let logger: Logger
    private let systemd: SystemdNotifier
    private let loop: EventLoop
    private let signals: SignalSource
    private let timer: MonotonicTimer
    private var supervision: Supervision
    private var children: [Int: Child] = [:]
    /// Processes exited generations left in their process groups, by generation.
    private var leftovers: [Int: [ChildProcess]] = [:]
    /// Everything overseerd waits for the clock for, on one timerfd.
    enum Deadline: Hashable {
        case supervision(Supervision.Timer)
        case upgradePoll
        case upgradeSettle
        case helperTimeout(Int)
        case leftovers(Int)
        case controlTimeout(Int)
        case watchdog
    }

    private var deadlines: [Deadline: Int64] = [:]
    /// Handlers of fds watched for other parts (upgrade helpers, the file watcher), by token.
    private var watchers: [UInt64: () -> Void] = [:]
    private var nextWatcherToken: UInt64 = 1 << 40
    private var deadlineHandlers: [Deadline: () -> Void] = [:]
    var helpers: [Int: HelperProcess] = [:]
    var nextHelperID = 1
    var upgrade: UpgradeDriver?
    private let upgradePlan: UpgradeDriver.Plan?
    /// The generation spawned last: the candidate a restart report is about.
    private var lastSpawnedGeneration = 0
    private var startedAt = MonotonicTimer.now
    /// Set when this image took over from an earlier one.
    private let handover: HandoverState?
    private var lastRestart: RestartResult?
    /// The newest "restart failed: …" line, kept to answer `restart --wait` with it.
    private var lastRestartFailure: String?
    private var control: ControlServer?
    /// The binary each recent generation was started from.
    private var spawnedBinaries: [Int: String] = [:]
    private var binaryIDCache: (key: [Int], id: String)?
    private var pending: [Supervision.Event] = []

    /// Sets up the loop around listeners that are already bound.
    init(configuration: Configuration, environment: ProcessEnvironment, listeners: [Listener],
         upgradePlan: UpgradeDriver.Plan?, handover: HandoverState? = nil, logger: Logger) throws(SystemError) {
        self.handover = handover
        self.configuration = configuration
        self.upgradePlan = upgradePlan
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
        if let handover { try adopt(handover) }
    }

    /// Takes the serving child over from the image that re-executed into this one.
    private func adopt(_ state: HandoverState) throws(SystemError) {
        let record = state.child
        startedAt = state.startedAt
        supervision = Supervision(settings: .init(configuration), adoptingServing: record.generation)
        let process = ChildProcess(adopting: record.pid, pidfd: record.pidfd)
        var notify: NotifyReceiver?
        if let fd = record.notifyFD, let address = record.notifyAddress { notify = NotifyReceiver(adopting: fd, address: address) }
        children[record.generation] = Child(generation: record.generation, process: process, notify: notify,
                                            binaryID: record.binaryID, startedAt: record.startedAt, lastStatus: record.lastStatus)
        lastSpawnedGeneration = record.generation
        spawnedBinaries[record.generation] = record.binaryID
        if let pidfd = process.pidfd { try loop.watch(pidfd, token: Token.pidfd(record.generation)) }
        if let notify { try loop.watch(notify.fd, token: Token.notify(record.generation)) }
    }

    /// Starts the first child and serves until overseerd is to exit; never returns.
    public func run() -> Never {
        if let fd = handover?.controlFD, let path = handover?.controlPath {
            do {
                control = try ControlServer(adopting: fd, path: path, host: self)
            } catch {
                logger.warning("no control socket: \(error)")
            }
        } else if let path = configuration.controlSocket {
            do {
                control = try ControlServer(path: path, host: self)
                logger.info("control socket at \(path)")
            } catch {
                logger.warning("no control socket: \(error) (give --control-socket PATH, or none)")
            }
        }
        startWatchdog()
        storeListenersWithSystemd()
        if let handover {
            let child = handover.child
            logger.notice("took over from the previous overseerd image: generation \(child.generation) (pid \(child.pid)) keeps serving")
            systemd.send(NotifyMessage([("STATUS", serviceStatus(serving: child.generation))]))
            // It may have exited while the images changed.
            reap(child.generation)
        } else {
            feed(.started)
        }
        if let upgradePlan {
            do {
                upgrade = try UpgradeDriver(plan: upgradePlan, host: self, rejected: handover?.rejected ?? [])
            } catch {
                logger.error("upgrades are off: \(error)")
            }
        }
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
        case _ where token >= 1 << 40:
            watchers[token]?()
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
            if signal == SIGPIPE, sender == 0 || sender == getpid() {
                // Raised by our own write to a closed stderr: not for the child.
                continue
            }
            if signal == SIGCHLD {
                // Kernels without pidfd tell us this way; with pidfds it is harmless.
                for generation in children.keys.sorted() { reap(generation) }
                for helper in Array(helpers.values) { helper.reapIfDone(self) }
            } else if signal == configuration.reexecSignal {
                requestReexec(reason: "\(SignalNumber.name(signal)) from pid \(sender)") { _, _ in }
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
        guard let child = children[generation], child.process.hasExited else { return }
        takeLeftovers(of: generation, child)
        guard let exit = child.process.reap() else { return }
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

    /// A generation is its process and the process group it leads. Processes it
    /// left in that group keep the listening sockets and could go on accepting
    /// with the old code, with nobody to stop them. They may be finishing work
    /// (a fork-per-connection server's children, a wrapper's server that got
    /// the stop signal too), so they get --stop-timeout, then SIGKILL, as
    /// systemd's KillMode=mixed does at a unit's end. Taken while the exited
    /// child is still a zombie, so its group id cannot be anyone else's; held
    /// by pidfd from then on. A process that must outlive its generation
    /// leaves the group (setsid).
    private func takeLeftovers(of generation: Int, _ child: Child) {
        let pid = child.process.pid
        let pids = ProcFS.processGroupMembers(pid).filter { $0 != pid }
        // One already gone is not kept: a later kill(pid) could reach whoever got its pid.
        // Only a kernel without pidfds leaves the plain pid to signal.
        let processes = pids.compactMap { pid -> ChildProcess? in
            let pidfd = ChildProcess.openPidfd(pid)
            if pidfd == nil, errno == ESRCH { return nil }
            return ChildProcess(adopting: pid, pidfd: pidfd)
        }
        guard !processes.isEmpty else { return }
        leftovers[generation] = processes
        let list = processes.prefix(8).map { String($0.pid) }.joined(separator: ", ") + (processes.count > 8 ? ", …" : "")
        let timeout = configuration.stopTimeout
        logger.warning("generation \(generation) (pid \(pid)) exited and left \(processes.count) process(es) in its process group (\(list)); SIGKILL in \(timeout.shortDescription) unless they end")
        schedule(.leftovers(generation), after: timeout) { [unowned self] in killLeftovers(of: generation) }
    }

    /// SIGKILL to what a generation left behind.
    private func killLeftovers(of generation: Int) {
        guard let processes = leftovers.removeValue(forKey: generation) else { return }
        let alive = processes.filter(\.isAlive)
        for process in processes {
            process.signal(SIGKILL)
            process.release()
        }
        if !alive.isEmpty {
            logger.warning("killed \(alive.count) process(es) left by generation \(generation) (\(alive.map { String($0.pid) }.joined(separator: ", ")))")
        }
    }

    private func readNotifications(_ generation: Int) {
        guard let child = children[generation], let notify = child.notify else { return }
        // The sender is checked as each datagram is taken: a short-lived sender
        // (systemd-notify) may be gone by the time later ones are read.
        for datagram in notify.receiveAll(checkingSender: { self.isSentByChild($0, of: child.process.pid) }) {
            // systemd-notify's BARRIER=1 (sent with an fd, which we close) asks for nothing.
            if datagram.message.assignments.allSatisfy({ $0.key == "BARRIER" }) { continue }
            guard datagram.fromChild else {
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
                if supervision.serving == generation {
                    systemd.send(NotifyMessage([("STATUS", serviceStatus(serving: generation))]))
                }
            }
            if message.isStopping { logger.info("generation \(generation) is stopping") }
            if message.isWatchdogPing { children[generation]?.lastWatchdog = MonotonicTimer.now }
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
        for (key, _) in due {
            deadlines[key] = nil
            switch key {
            case let .supervision(timer): feed(.timerFired(timer))
            default: deadlineHandlers.removeValue(forKey: key)?()
            }
        }
        rearmTimer()
    }

    private func rearmTimer() {
        do { try timer.arm(at: deadlines.values.min()) } catch { logger.error("\(error)") }
    }

    // MARK: - Services for the upgrade driver

    /// Calls `handler` when `fd` is readable; returns the token to unwatch with.
    func watch(_ fd: Int32, handler: @escaping () -> Void) throws(SystemError) -> UInt64 {
        let token = nextWatcherToken
        nextWatcherToken += 1
        try loop.watch(.init(rawValue: fd), token: token)
        watchers[token] = handler
        return token
    }

    func unwatch(_ fd: Int32, token: UInt64) {
        loop.unwatch(.init(rawValue: fd))
        watchers[token] = nil
    }

    /// Calls `handler` once after `delay`, replacing an earlier one for the same key.
    func schedule(_ key: Deadline, after delay: Duration, handler: @escaping () -> Void) {
        deadlines[key] = MonotonicTimer.now + delay.totalNanoseconds
        deadlineHandlers[key] = handler
        rearmTimer()
    }

    func cancel(_ key: Deadline) {
        deadlines[key] = nil
        deadlineHandlers[key] = nil
        rearmTimer()
    }

    /// Asks for a graceful restart, as the restart signal does.
    func requestRestart(reason: String) {
        feed(.restartRequested(reason: reason))
    }

    /// The program as it would be started now (PATH looked up again).
    func resolvedProgram() throws(ProgramLocator.Failure) -> String {
        ProcFS.absolute(try ProgramLocator.resolve(configuration.program, path: environment.dictionary["PATH"]))
    }

    /// overseerd's environment less what systemd meant for overseerd itself.
    var inheritableEnvironment: [String] {
        environment.entries.filter { !EnvironmentName.systemdOwn.contains($0.name) && !$0.name.hasPrefix("OVERSEER_") }
            .map { "\($0.name)=\($0.value)" }
    }

    /// SHA-256 of the program file, cached while the file is unchanged.
    func binaryID(of path: String) -> String { identify(path) }

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
            // A generation that would not stop is killed whole: its process group too.
            if signal == SIGKILL { child.process.signalProcessGroup(SIGKILL) }
        case let .startTimer(timer, after):
            deadlines[.supervision(timer)] = MonotonicTimer.now + after.totalNanoseconds
            rearmTimer()
        case let .cancelTimer(timer):
            if deadlines.removeValue(forKey: .supervision(timer)) != nil { rearmTimer() }
        case let .report(state):
            report(state)
        case let .log(level, message):
            switch level {
            case .debug: logger.debug("\(message)")
            case .info: logger.info("\(message)")
            case .notice: logger.notice("\(message)")
            case .warning: logger.warning("\(message)")
            case .error:
                if message.hasPrefix("restart failed: ") { lastRestartFailure = String(message.dropFirst(16)) }
                logger.error("\(message)")
            }
        case let .exit(status):
            exitNow(status)
        }
    }

    private func spawn(_ generation: Int) {
        // Recorded first: a restart report (and `restart --wait`) names this generation even if it never starts.
        lastSpawnedGeneration = generation
        let path: String
        do {
            path = try ProgramLocator.resolve(configuration.program, path: environment.dictionary["PATH"])
        } catch {
            pending.append(.childSpawnFailed(generation: generation, exitCode: error.exitCode, reason: error.description))
            return
        }
        let absolutePath = ProcFS.absolute(path)
        let binaryID = identify(absolutePath)
        spawnedBinaries[generation] = binaryID
        if let expected = upgrade?.expectedBinary, expected != binaryID {
            pending.append(.childSpawnFailed(generation: generation, exitCode: OverseerExitCode.cannotExecute,
                                             reason: "\(absolutePath) changed after it was verified (sha256 \(binaryID.prefix(12)), verified \(expected.prefix(12)))"))
            return
        }
        var notify: NotifyReceiver?
        do {
            notify = try NotifyReceiver(label: String(generation))
        } catch {
            logger.warning("generation \(generation) gets no NOTIFY_SOCKET: \(error)")
        }
        let sockets = ListenFDs(names: listeners.map(\.name))
        let facts = ChildEnvironment.Facts(binaryPath: absolutePath, binaryID: binaryID, generation: generation,
                                           notifySocket: notify?.address)
        var childEnvironment = ChildEnvironment.entries(inherited: environment.entries, sockets: sockets, facts: facts)
        if configuration.watchdogRelay, let interval = watchdogInterval {
            // The child pings its own notify socket; overseerd passes the pings on.
            childEnvironment.insert("\(EnvironmentName.watchdogUSec)=\(interval.totalNanoseconds / 1000)", at: 0)
        }
        let request = ChildProcess.Request(
            path: path,
            arguments: [configuration.program] + configuration.arguments,
            environment: childEnvironment,
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
        children[generation] = Child(generation: generation, process: process, notify: notify, binaryID: binaryID,
                                     startedAt: MonotonicTimer.now)
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
        if case let .ready(generation, restartSucceeded?) = state {
            let candidate = restartSucceeded ? generation : lastSpawnedGeneration
            if let binary = spawnedBinaries[candidate] {
                upgrade?.restartFinished(binary: binary, succeeded: restartSucceeded)
            }
            spawnedBinaries = spawnedBinaries.filter { children[$0.key] != nil || $0.key == lastSpawnedGeneration }
            let message = restartSucceeded
                ? "generation \(generation) is serving (pid \(children[generation].map { String($0.process.pid) } ?? "?"))"
                : "restart failed: \(lastRestartFailure ?? "generation \(candidate) did not become ready")"
            lastRestart = RestartResult(succeeded: restartSucceeded, generation: candidate, at: MonotonicTimer.now, message: message)
            lastRestartFailure = nil
            control?.restartFinished(candidate: candidate, succeeded: restartSucceeded, message: message)
        }
        if case .stopping = state { control?.stopping() }
        var message = NotifyMessage([])
        switch state {
        case let .ready(generation, _):
            message.assignments = [("READY", "1"), ("STATUS", serviceStatus(serving: generation)), ("MAINPID", String(getpid()))]
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
    private func storeListenersWithSystemd() {
        guard systemd.isEnabled, handover == nil else { return }
        // Named TCP/UDP sockets only: a unix socket's file is removed when overseerd
        // exits, and an unnamed socket could not be matched to its --listen again.
        for listener in listeners where listener.origin != .inherited && listener.name != .unnamed
            && (listener.kind == "tcp" || listener.kind == "udp") {
            systemd.send(NotifyMessage([("FDSTORE", "1"), ("FDNAME", listener.name.rawValue)]), passing: listener.fd.rawValue)
        }
    }

    /// The systemd watchdog interval meant for overseerd, if any.
    private var watchdogInterval: Duration? {
        let variables = environment.dictionary
        guard let text = variables[EnvironmentName.watchdogUSec], let usec = Int64(text), usec > 0 else { return nil }
        if let pid = variables[EnvironmentName.watchdogPID], pid != String(getpid()) { return nil }
        return .microseconds(usec)
    }

    private func startWatchdog() {
        guard let interval = watchdogInterval else { return }
        logger.info("systemd watchdog every \(interval.shortDescription)\(configuration.watchdogRelay ? ", relayed from the serving child" : "")")
        pingWatchdog(every: interval)
    }

    /// Pings at half the interval while a child lives; in relay mode only while
    /// the serving child pinged within the interval, so that systemd sees a hung child.
    private func pingWatchdog(every interval: Duration) {
        let healthy: Bool
        if configuration.watchdogRelay {
            let since = MonotonicTimer.now - interval.totalNanoseconds
            healthy = supervision.serving.flatMap { children[$0]?.lastWatchdog }.map { $0 >= since } ?? false
        } else {
            healthy = !children.isEmpty
        }
        if healthy { systemd.send(NotifyMessage([("WATCHDOG", "1")])) }
        schedule(.watchdog, after: interval / 2) { [unowned self] in pingWatchdog(every: interval) }
    }

    /// STATUS= for systemd: who serves, on what, and how the last restart went.
    private func serviceStatus(serving generation: Int) -> String {
        guard let child = children[generation] else { return "generation \(generation) gone" }
        var status = "serving generation \(generation) (pid \(child.process.pid), binary \(child.binaryID.prefix(12)))"
        if let lastRestart { status += lastRestart.succeeded ? "; last restart succeeded" : "; last restart failed" }
        if let childStatus = child.lastStatus { status += ": \(childStatus)" }
        return status
    }

    // MARK: - Re-executing overseerd itself

    /// Re-executes overseerd's binary (as it is on disk now: a package upgrade
    /// may have replaced it), handing over the listeners, the serving child and
    /// the control socket, none of which is closed. `completion` hears of a
    /// refusal or failure; on success this image ends inside exec.
    func requestReexec(reason: String, completion: @escaping (Bool, String) -> Void) {
        guard supervision.isSettled, helpers.isEmpty, leftovers.isEmpty, upgrade?.isIdle ?? true, let serving = supervision.serving,
              let child = children[serving] else {
            let why = "overseerd is busy (a restart, drain or upgrade is under way); try again when it has settled"
            logger.warning("re-exec (\(reason)) refused: \(why)")
            completion(false, why)
            return
        }
        let path = ProcFS.ownExecutable()
        let check = HandoverState.checkConfigurationFlag
        // The new image parses the same command line and environment after the exec:
        // it must accept them, or it would exit and the child would follow it.
        logger.notice("re-exec (\(reason)): checking that \(path) accepts this command line first (\(check))")
        do {
            try HelperProcess.start(on: self, label: "new overseerd check",
                                    arguments: [path, check] + CommandLine.arguments.dropFirst(),
                                    environment: inheritableEnvironmentForSelf, timeout: .seconds(10)) { [unowned self] exit, output in
                guard exit == .exited(0) else {
                    let why = "\(path) \(check) ended with \(exit) (its reason is logged above); not re-executing"
                    logger.error("re-exec failed: \(why)")
                    completion(false, why)
                    return
                }
                // "overseerd 0.1.0: the command line is valid"
                let version = output.split(separator: "\n").first?.split(separator: " ").dropFirst().first
                    .map { String($0.dropLast($0.hasSuffix(":") ? 1 : 0)) } ?? "?"
                completion(true, "re-executing \(path) (version \(version)); generation \(serving) (pid \(child.process.pid)) keeps serving")
                let failure = reexec(path: path, serving: child)
                logger.error("re-exec failed: \(failure); this overseerd goes on")
            }
        } catch {
            completion(false, "cannot run \(path) \(check): \(error)")
        }
    }

    /// Writes the state into a memfd and execs; returns only on failure.
    private func reexec(path: String, serving child: Child) -> String {
        guard supervision.isSettled else { return "a restart began meanwhile" }
        let state = HandoverState(
            startedAt: startedAt,
            listeners: listeners.map {
                .init(fd: $0.fd.rawValue, name: $0.name.rawValue, kind: $0.kind, localAddress: $0.localAddress,
                      createdPath: $0.createdPath, inherited: $0.origin == .inherited)
            },
            child: .init(generation: child.generation, pid: child.process.pid, pidfd: child.process.pidfd?.rawValue,
                         notifyFD: child.notify?.fd.rawValue, notifyAddress: child.notify?.address, binaryID: child.binaryID,
                         startedAt: child.startedAt, lastStatus: child.lastStatus),
            controlFD: control?.fd, controlPath: control?.path,
            rejected: upgrade?.rejected ?? [])
        let memfd: Int32
        do {
            memfd = try Handover.write(state)
        } catch {
            return "\(error)"
        }
        let inherited = state.fds + [memfd]
        for fd in inherited { Handover.setInheritable(fd, true) }
        let environmentEntries = inheritableEnvironmentForSelf + ["\(HandoverState.environmentVariable)=\(memfd)"]
        logger.notice("re-executing \(path) with the state in fd \(memfd)")
        let errorNumber = Handover.exec(path: path, arguments: [path] + CommandLine.arguments.dropFirst(), environment: environmentEntries)
        for fd in inherited { Handover.setInheritable(fd, false) }
        close(memfd)
        return "execve(\(path)): \(SystemError("execve", errno: .init(rawValue: errorNumber)).reason)"
    }

    /// overseerd's own environment as it was given (systemd's variables included), for the next image.
    private var inheritableEnvironmentForSelf: [String] {
        environment.entries.filter { $0.name != HandoverState.environmentVariable }.map { "\($0.name)=\($0.value)" }
    }

    // MARK: - Status

    /// The generation started last (0 before the first).
    var newestGeneration: Int { lastSpawnedGeneration }

    private func seconds(since time: Int64) -> Int64 { (MonotonicTimer.now - time) / 1_000_000_000 }

    private func state(of generation: Int) -> String {
        if supervision.serving == generation { return "serving" }
        if supervision.candidate == generation { return "starting" }
        return supervision.isStopping(generation) ? "stopping" : "running"
    }

    /// What `overseerd status` prints after its `ok` line.
    func statusText() -> String {
        var lines = ["overseerd pid \(getpid()), up \(Duration.seconds(seconds(since: startedAt)).shortDescription), program \(configuration.program)"]
        for generation in children.keys.sorted() {
            let child = children[generation]!
            var line = "generation \(generation) \(state(of: generation)): pid \(child.process.pid), binary \(child.binaryID.prefix(12)), up \(Duration.seconds(seconds(since: child.startedAt)).shortDescription)"
            if let status = child.lastStatus { line += ", status \"\(status)\"" }
            lines.append(line)
        }
        if let lastRestart {
            lines.append("last restart: \(lastRestart.succeeded ? "succeeded" : "failed") \(Duration.seconds(seconds(since: lastRestart.at)).shortDescription) ago: \(lastRestart.message)")
        } else {
            lines.append("last restart: none")
        }
        if let upgrade { lines.append("upgrades: \(upgrade.summary)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// What `overseerd status --json` prints after its `ok` line.
    func statusJSON() -> JSONText {
        let serving = supervision.serving.flatMap { children[$0] }
        var members: [(String, JSONText)] = [
            ("pid", .integer(Int64(getpid()))),
            ("uptime_seconds", .integer(seconds(since: startedAt))),
            ("program", .string(configuration.program)),
            ("serving_generation", serving.map { .integer(Int64($0.generation)) } ?? .null),
            ("serving_pid", serving.map { .integer(Int64($0.process.pid)) } ?? .null),
            ("binary_id", serving.map { .string($0.binaryID) } ?? .null),
            ("generations", .array(children.keys.sorted().map { generation in
                let child = children[generation]!
                return .object([
                    ("generation", .integer(Int64(generation))), ("pid", .integer(Int64(child.process.pid))),
                    ("state", .string(state(of: generation))), ("binary_id", .string(child.binaryID)),
                    ("uptime_seconds", .integer(seconds(since: child.startedAt))),
                    ("status", child.lastStatus.map { .string($0) } ?? .null),
                ])
            })),
        ]
        if let lastRestart {
            members.append(("last_restart", .object([
                ("result", .string(lastRestart.succeeded ? "succeeded" : "failed")),
                ("generation", .integer(Int64(lastRestart.generation))),
                ("seconds_ago", .integer(seconds(since: lastRestart.at))),
                ("message", .string(lastRestart.message)),
            ])))
        } else {
            members.append(("last_restart", .null))
        }
        if let upgrade { members.append(("upgrades", .string(upgrade.summary))) }
        return .object(members)
    }

    private func exitNow(_ status: ProcessExit) -> Never {
        // Nobody would stop them after this.
        for generation in Array(leftovers.keys) { killLeftovers(of: generation) }
        control?.close()
        for child in children.values { child.notify?.close() }
        for helper in helpers.values { helper.process.signal(SIGKILL) }
        upgrade?.shutdown()
        ListenerBinder.close(listeners)
        switch status {
        case let .exited(code):
            exit(code)
        case let .killed(signal):
            dieBySignal(signal)
        }
    }
}

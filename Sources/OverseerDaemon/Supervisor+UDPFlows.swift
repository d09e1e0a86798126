import OverseerCore
import OverseerProtocol
import OverseerSystem
import SystemPackage

/// What the Supervisor keeps of its UDP listeners' flows (`--udp-flows`).
final class UDPFlows {
    /// The steered listeners.
    var steered: [UDPFlowListener] = []
    /// Each UDP listener's mode, by its index among the listeners.
    var decisions: [Int: UDPFlowMode.Decision] = [:]
    /// The serving generation the steering last heard of.
    var followedServing: Int?
    /// The last count of each steered listener's flows (by listener index), when it ended,
    /// and whether one runs: counted on a thread, at most once a `countInterval`.
    var counts: [Int: UDPFlowCount] = [:]
    var countedAt: Int64?
    var counting = false
    static let countInterval: Duration = .seconds(1)
}

extension Supervisor {
    /// At start: the mode of each UDP listener; for a steered one its program,
    /// maps and spare socket (taken over after a re-exec). One warning names
    /// why steering cannot be had, and the listeners that share a socket instead.
    func startUDPFlows() {
        var fallbacks: [String: [String]] = [:]
        var probed: String??
        func unavailable() -> String? {
            if let probed { return probed }
            let reason = UDPSteering.probe().map { "\($0)" }
            probed = .some(reason)
            return reason
        }
        for (index, listener) in listeners.enumerated() where listener.kind == "udp" {
            if let record = handover?.udpFlows.first(where: { $0.listenerFD == listener.fd.rawValue }) {
                do {
                    let adopted = try UDPFlowListener(index: index, listener: listener, record: record, flowTimeout: configuration.udpFlowTimeout)
                    udpFlows.steered.append(adopted)
                    udpFlows.decisions[index] = .init(mode: .steered, fallbackReason: nil)
                } catch {
                    logger.log(.error, .udpFlowsError, "\(listener.name): cannot take over the UDP flow steering: \(error); its flows are no longer kept")
                    udpFlows.decisions[index] = .init(mode: .shared, fallbackReason: "\(error)")
                }
                continue
            }
            let hasReusePort = ReusePortSocket.hasReusePort(listener.fd)
            // A socket overseerd bound without SO_REUSEPORT was bound so because steering was found unavailable.
            let steeringUnavailable = configuration.udpFlows == .steered && !hasReusePort && listener.origin != .inherited ? unavailable() : nil
            guard var decision = UDPFlowMode.decide(requested: configuration.udpFlows, kind: listener.kind,
                                                    inherited: listener.origin == .inherited,
                                                    hasReusePort: hasReusePort, steeringUnavailable: steeringUnavailable) else { continue }
            if decision.mode == .steered || (handover != nil && configuration.udpFlows == .steered) {
                if handover != nil {
                    // The serving generation has the listener itself, from the image before: it cannot move to a socket of its own.
                    decision = .init(mode: .shared, fallbackReason: "the serving generation shares the listener's socket since before the re-exec (an overseerd that did not steer it); overseerd's next start steers it")
                } else {
                    do {
                        udpFlows.steered.append(try UDPFlowListener(index: index, listener: listener, flowTimeout: configuration.udpFlowTimeout))
                    } catch {
                        decision = .init(mode: .shared, fallbackReason: "\(error)")
                    }
                }
            }
            udpFlows.decisions[index] = decision
            if let reason = decision.fallbackReason { fallbacks[reason, default: []].append("\(listener.name) (\(listener.localAddress))") }
        }
        for (reason, names) in fallbacks.sorted(by: { $0.key < $1.key }) {
            logger.log(.warning, .udpFlowsShared, "UDP flows are not kept across restarts on \(names.joined(separator: ", ")): \(reason); every generation shares one socket, as with --udp-flows shared")
        }
        for flows in udpFlows.steered where handover == nil {
            logger.log(.info, .udpFlowsSteered, "\(flows.listener.name) (\(flows.listener.localAddress)): UDP flows stay with the generation that took them (flow timeout \(configuration.udpFlowTimeout.shortDescription))")
        }
    }

    /// The fds `generation` gets for the listeners: a steered UDP listener's
    /// spare socket in place of the listener itself.
    func listenerFDs(for generation: Int) -> [Int32] {
        var fds = listeners.map(\.fd.rawValue)
        for flows in udpFlows.steered {
            let (fd, problem) = flows.socket(for: generation)
            if let problem {
                log(LogLine(.error, .udpFlowsError, "\(flows.listener.name): \(problem)\(fd == nil ? "; generation \(generation) shares the listener's socket, its flows are not kept" : "")", generation: generation))
            }
            if let fd { fds[flows.index] = fd.rawValue }
        }
        return fds
    }

    /// The spawn of `generation` returned (`started`: its process exists).
    /// With `--workers` the generation's socket is kept while any of its workers
    /// lives, so that a worker started later (a roll, a replacement) gets the
    /// same one; it goes when the last of them has (`udpFlowsWorkerEnded`).
    func udpFlowsSpawned(_ generation: Int, started: Bool) {
        if configuration.workers.count > 1 {
            if !started { udpFlowsWorkerEnded(generation) }
            return
        }
        for flows in udpFlows.steered {
            if started { flows.spawned(generation) } else { udpFlowsEnded(generation) }
        }
    }

    /// `generation` exited: its socket leaves its slot, its flows go to the serving generation.
    func udpFlowsEnded(_ generation: Int) {
        for flows in udpFlows.steered {
            do { try flows.ended(generation) } catch {
                log(LogLine(.error, .udpFlowsError, "\(flows.listener.name): \(error)", generation: generation))
            }
        }
    }

    /// With `--workers`: a worker of `generation` exited or could not be
    /// started; when none of its workers is left, the generation's socket goes.
    func udpFlowsWorkerEnded(_ generation: Int) {
        if processes(of: generation).isEmpty { udpFlowsEnded(generation) }
    }

    /// After the machine's events: new flows go to the generation that serves now.
    func followServingWithUDPFlows() {
        guard !udpFlows.steered.isEmpty, supervision.serving != udpFlows.followedServing else { return }
        udpFlows.followedServing = supervision.serving
        for flows in udpFlows.steered {
            do { try flows.serving(supervision.serving) } catch {
                log(LogLine(.error, .udpFlowsError, "\(flows.listener.name): new flows cannot be directed to generation \(supervision.serving.map(String.init) ?? "none"): \(error)"))
            }
        }
    }

    /// What the next image takes over.
    var udpFlowHandoverRecords: [HandoverState.UDPFlowRecord] { udpFlows.steered.map(\.handoverRecord) }

    /// One entry per UDP listener: its mode and why, and its live flows per
    /// generation as last counted (a count older than a second starts another,
    /// on a thread: reading a full table takes longer than the loop may wait).
    var udpFlowReports: [UDPFlowReport] {
        refreshFlowCounts()
        let now = MonotonicTimer.now
        return udpFlows.decisions.keys.sorted().map { index in
            let listener = listeners[index]
            let decision = udpFlows.decisions[index]!
            var report = UDPFlowReport(name: listener.name.description, address: listener.localAddress, mode: decision.mode,
                                       fallbackReason: decision.fallbackReason)
            if decision.mode == .steered {
                if let count = udpFlows.counts[index], let at = udpFlows.countedAt {
                    report.flows = count.byGeneration
                    report.waiting = count.waiting
                    report.countError = count.error
                    report.countedSecondsAgo = Int((now - at) / 1_000_000_000)
                }
            }
            return report
        }
    }

    /// Starts a count of the steered listeners' flows unless one runs or the last is fresh.
    func refreshFlowCounts() {
        guard !udpFlows.steered.isEmpty, !udpFlows.counting else { return }
        if let at = udpFlows.countedAt, MonotonicTimer.now - at < UDPFlows.countInterval.totalNanoseconds { return }
        let snapshots = udpFlows.steered.map(\.countingSnapshot)
        udpFlows.counting = true
        do {
            try reactor.inBackground({ snapshots.map { ($0.index, $0.count()) } }) { [unowned self] results in
                udpFlows.counting = false
                udpFlows.countedAt = MonotonicTimer.now
                udpFlows.counts = Dictionary(results, uniquingKeysWith: { $1 })
            }
        } catch {
            udpFlows.counting = false
            log(LogLine(.warning, .udpFlowsError, "cannot count the UDP flows: \(error)"))
        }
    }
}

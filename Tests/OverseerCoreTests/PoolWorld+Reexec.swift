@testable import OverseerCore

extension PoolWorld {
    /// overseerd re-executes itself as the daemon does it: the pool's refusal
    /// first; else the workers handed over (through the handover's own codec),
    /// a new `Supervision` adopting the serving generation with the binaries'
    /// record, a pool adopting the workers, then `.binaryLife(.started)` and
    /// `.binaryLife(.generationReady)` fed through it. Timers of the old image
    /// are gone with it. Returns the refusal, or nil once the new image runs.
    mutating func reexec() -> String? {
        if let refusal = pool.handoverRefusal { return refusal }
        guard let serving = pool.supervision.serving else { return "nothing serves" }
        let records = pool.handover.map {
            HandoverState.WorkerRecord(worker: $0.worker, instance: $0.instance, generation: $0.generation, pid: Int32(1000 + $0.instance),
                                       pidfd: nil, notifyFD: nil, notifyAddress: nil, binaryID: $0.binary, startedAt: 1, readyAt: 2,
                                       lastStatus: nil, lastWatchdog: nil, restarts: $0.restarts, delay: $0.delay)
        }
        var state = HandoverState(startedAt: 1, listeners: [],
                                  child: .init(generation: serving, pid: 1000, pidfd: nil, notifyFD: nil, notifyAddress: nil,
                                               binaryID: records.first?.process.binaryID ?? "", startedAt: 1, lastStatus: nil),
                                  controlFD: nil, controlPath: nil, rejected: [])
        state.workers = records
        guard let parsed = try? HandoverState(parsing: state.encoded) else { return "the handover did not parse" }
        let adopting = Supervision(settings: pool.supervision.settings, adoptingServing: serving,
                                      binary: parsed.child.binaryID, record: pool.supervision.binaryLife.record)
        guard let (adopted, actions) = WorkerPool.adopting(parsed.workers.map(\.adopted), settings: pool.settings,
                                                           supervision: adopting) else { return "the new image refused the workers" }
        pool = adopted
        // The old image's bookkeeping goes with it (the new one numbers its workers on from the adopted ones).
        asked = []
        alive = alive.intersection(pool.processes.keys)
        timers = [:]
        supervisionTimers = [:]
        for case let .startTimer(timer, after) in actions { timers[timer] = after }
        trace += actions
        supervision(.binaryLife(.started(identified: program)))
        supervision(.binaryLife(.generationReady(serving)))
        return nil
    }
}

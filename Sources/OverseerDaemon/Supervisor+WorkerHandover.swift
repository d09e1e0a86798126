import OverseerCore
import OverseerSystem

/// A re-exec with `--workers N` (N > 1): the image going hands over every
/// slot's worker (`HandoverState.WorkerRecord`), the next one adopts them and
/// its `WorkerPool` starts from them (`WorkerPool+Adoption`).
extension Supervisor {
    /// Why the workers cannot be handed to a new image now, or nil (always nil with one child).
    var workersRefuseReexec: String? {
        guard configuration.workers.count > 1 else { return nil }
        guard let pool = workerPool else { return "no generation is serving" }
        return pool.handoverRefusal
    }

    /// Every slot's worker, as the next image takes it over.
    var workerHandoverRecords: [HandoverState.WorkerRecord] {
        guard let pool = workerPool else { return [] }
        return pool.handover.compactMap { adopted in
            guard let child = children[adopted.instance] else { return nil }
            return HandoverState.WorkerRecord(worker: adopted.worker, instance: adopted.instance, process: child.handoverRecord,
                                              readyAt: child.readyAt, restarts: adopted.restarts, delay: adopted.delay)
        }
    }

    /// Takes over the workers the previous image handed over (their processes,
    /// notify sockets and pidfds); the pool around them is made at the first
    /// event (`makeWorkerPool`), once `supervision` holds the binaries' record.
    func adoptWorkers(_ records: [HandoverState.WorkerRecord]) throws(SystemError) {
        for record in records {
            try adopt(record.process, as: record.instance, worker: record.worker, readyAt: record.readyAt ?? MonotonicTimer.now)
        }
    }

    /// After the take-over: the pool around the adopted workers (if no event made it
    /// yet), then the workers that exited while the images changed (no pidfd event may come for them).
    func resumeAdoptedWorkers() {
        guard let records = handover?.workers, !records.isEmpty else { return }
        if workerPool == nil { workerPool = makeWorkerPool() }
        for record in records { reap(record.instance) }
    }

    /// The pool for `--workers N`: the previous image's workers after a re-exec
    /// (its actions carried out), else empty slots.
    func makeWorkerPool() -> WorkerPool {
        let adopted = (handover?.workers ?? []).map(\.adopted)
        guard !adopted.isEmpty else { return WorkerPool(settings: configuration.workers, supervision: supervision) }
        guard let (pool, actions) = WorkerPool.adopting(adopted, settings: configuration.workers, supervision: supervision) else {
            // Checked before this image started (`Daemon`): only a changed serving generation could get here.
            logger.log(.critical, .internalError, "cannot take over the previous image's workers; starting the slots afresh")
            return WorkerPool(settings: configuration.workers, supervision: supervision)
        }
        workerPool = pool
        for action in actions { perform(action) }
        return pool
    }

    /// The workers a handover lists, checked against `--workers` before anything is taken over.
    static func workerAdoptionProblem(_ state: HandoverState, settings: WorkerSettings) -> String? {
        if settings.count == 1 {
            return state.workers.isEmpty ? nil : "it handed over \(state.workers.count) workers and --workers is 1"
        }
        return WorkerPool.adoptionProblem(state.workers.map(\.adopted), settings: settings, serving: state.child.generation)
    }
}

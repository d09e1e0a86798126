/// A re-exec of overseerd with `--workers N` (N > 1): the image going hands
/// the next one every slot's worker (`handover`), and the next image's pool
/// starts from them (`adopting`) instead of from empty slots.
///
/// Only a settled pool is handed over (`handoverRefusal`): every slot filled by
/// a ready worker of the serving generation, nothing starting, stopping, due
/// to be replaced, rolling or rolling back. A roll is not handed over: a re-exec asked for
/// during one is refused and may be asked again once it has ended. What a slot
/// keeps across the exec: its worker, its restart count and its backoff delay;
/// its crash window (`--worker-crash-window`) and its healthy timer start
/// afresh in the new image.
extension WorkerPool {
    /// A ready worker handed over by an earlier image, in its slot.
    public struct AdoptedWorker: Equatable, Sendable {
        public var worker: Int
        public var instance: Int
        public var generation: Int
        public var binary: String
        public var restarts: Int
        /// The slot's next replacement delay.
        public var delay: Duration

        public init(worker: Int, instance: Int, generation: Int, binary: String, restarts: Int, delay: Duration) {
            self.worker = worker
            self.instance = instance
            self.generation = generation
            self.binary = binary
            self.restarts = restarts
            self.delay = delay
        }
    }

    /// Why the pool cannot be handed to a new image now (one line, for the
    /// operator), or nil when every slot has exactly one ready worker of the
    /// serving generation and nothing else runs or waits.
    public var handoverRefusal: String? {
        guard let serving = supervision.serving else { return "no generation is serving yet; try again once one is ready" }
        if let rollingTo {
            return "a rolling restart to generation \(rollingTo) is under way (a roll is not handed over); try again when it has ended"
        }
        if supervision.binaryLife.rollback != nil { return "a rollback to the last good binary is under way; try again when it has ended" }
        for slot in slots {
            if slot.waitingToReplace || slot.incoming != nil {
                return "worker \(slot.worker) is being replaced after it exited; try again once it is ready"
            }
            guard let current = slot.current, let process = processes[current], process.state == .ready,
                  process.generation == serving, process.binary != nil else {
                return "worker \(slot.worker) has no ready process of generation \(serving); try again once it is ready"
            }
        }
        let others = processes.count - slots.count
        if others > 0 { return "\(others) worker(s) still stopping; try again once they have gone" }
        guard supervision.isSettled else { return "a restart or drain is under way; try again when it has settled" }
        return nil
    }

    /// What a re-exec hands over, by slot (meaningful when `handoverRefusal` is nil).
    public var handover: [AdoptedWorker] {
        slots.compactMap { slot in
            guard let instance = slot.current, let process = processes[instance] else { return nil }
            return AdoptedWorker(worker: slot.worker, instance: instance, generation: process.generation,
                                 binary: process.binary ?? "", restarts: slot.restarts, delay: slot.delay)
        }
    }

    /// Why `workers` cannot fill this pool's slots (from `settings`, serving
    /// `serving`), or nil: one ready worker per slot 0…N−1, each of `serving`,
    /// with its own instance number.
    public static func adoptionProblem(_ workers: [AdoptedWorker], settings: WorkerSettings, serving: Int) -> String? {
        let numbers = workers.map(\.worker).sorted()
        guard numbers == Array(0 ..< settings.count) else {
            return "it handed over workers \(numbers.map(String.init).joined(separator: ",")) and --workers is \(settings.count)"
        }
        if let stray = workers.first(where: { $0.generation != serving }) {
            return "worker \(stray.worker) runs generation \(stray.generation), not the serving generation \(serving)"
        }
        if Set(workers.map(\.instance)).count != workers.count || workers.contains(where: { $0.instance <= 0 }) {
            return "two workers share an instance number"
        }
        return nil
    }

    /// The pool an image takes over with `workers` (checked with `adoptionProblem`;
    /// nil when it reports one), and the actions to start with: each slot whose
    /// delay is above the first gets its healthy timer again.
    public static func adopting(_ workers: [AdoptedWorker], settings: WorkerSettings,
                                supervision: Supervision) -> (pool: WorkerPool, actions: [Action])? {
        guard let serving = supervision.serving,
              adoptionProblem(workers, settings: settings, serving: serving) == nil else { return nil }
        var slots: [Slot] = []
        var processes: [Int: Process] = [:]
        var actions: [Action] = []
        for adopted in workers.sorted(by: { $0.worker < $1.worker }) {
            processes[adopted.instance] = Process(instance: adopted.instance, generation: adopted.generation, worker: adopted.worker,
                                                  state: .ready, binary: adopted.binary)
            let delay = min(max(adopted.delay, settings.restartDelay), settings.restartMaxDelay)
            slots.append(Slot(worker: adopted.worker, current: adopted.instance, restarts: adopted.restarts, delay: delay))
            if delay > settings.restartDelay { actions.append(.startTimer(.healthy(worker: adopted.worker), after: settings.healthyAfter)) }
        }
        let pool = WorkerPool(settings: settings, supervision: supervision, filled: slots, processes: processes)
        return (pool, actions)
    }
}

extension HandoverState {
    /// One slot of `--workers N` (N > 1) and the ready worker that fills it, as
    /// the re-executing image hands it on (`WorkerPool.handoverRefusal` says
    /// when there is exactly one such worker per slot).
    public struct WorkerRecord: Equatable, Sendable {
        /// The slot (`OVERSEER_WORKER`).
        public var worker: Int
        /// The pool's number for the process (`WorkerPool.Process.instance`).
        public var instance: Int
        /// The worker's process, as the record of one child carries it.
        public var process: ChildRecord
        /// When it said READY=1 (CLOCK_MONOTONIC, ns).
        public var readyAt: Int64?
        /// Workers started again in the slot after one exited.
        public var restarts: Int
        /// The slot's next replacement delay (its backoff).
        public var delay: Duration

        public init(worker: Int, instance: Int, process: ChildRecord, readyAt: Int64?, restarts: Int, delay: Duration) {
            self.worker = worker
            self.instance = instance
            self.process = process
            self.readyAt = readyAt
            self.restarts = restarts
            self.delay = delay
        }

        public init(worker: Int, instance: Int, generation: Int, pid: Int32, pidfd: Int32?, notifyFD: Int32?, notifyAddress: String?,
                    binaryID: String, startedAt: Int64, readyAt: Int64?, lastStatus: String?, lastWatchdog: Int64?,
                    restarts: Int, delay: Duration) {
            self.init(worker: worker, instance: instance,
                      process: ChildRecord(generation: generation, pid: pid, pidfd: pidfd, notifyFD: notifyFD, notifyAddress: notifyAddress,
                                           binaryID: binaryID, startedAt: startedAt, lastStatus: lastStatus, lastWatchdog: lastWatchdog),
                      readyAt: readyAt, restarts: restarts, delay: delay)
        }

        static let fieldCount = 15

        /// `worker`, then the fields in declaration order; the delay in ns; empty for nil.
        var fields: [String] {
            ["worker", String(worker), String(instance), String(process.generation), String(process.pid), process.pidfd.map(String.init) ?? "",
             process.notifyFD.map(String.init) ?? "", process.notifyAddress ?? "", process.binaryID, String(process.startedAt),
             readyAt.map(String.init) ?? "", process.lastStatus ?? "", process.lastWatchdog.map(String.init) ?? "", String(restarts),
             String(delay.totalNanoseconds)]
        }

        /// Reads `fields`; nil when a number is not one (or out of range).
        init?(fields: [String]) {
            func optional<T: LosslessStringConvertible>(_ field: String, _: T.Type) -> T?? {
                field.isEmpty ? .some(nil) : T(field).map { .some($0) }
            }
            guard fields.count == Self.fieldCount, let worker = Int(fields[1]), worker >= 0, let instance = Int(fields[2]), instance > 0,
                  let generation = Int(fields[3]), generation > 0, let pid = Int32(fields[4]), pid > 0,
                  let pidfd = optional(fields[5], Int32.self), let notifyFD = optional(fields[6], Int32.self),
                  let startedAt = Int64(fields[9]), let readyAt = optional(fields[10], Int64.self),
                  let lastWatchdog = optional(fields[12], Int64.self), let restarts = Int(fields[13]), restarts >= 0,
                  let delay = Int64(fields[14]), delay >= 0 else { return nil }
            self.init(worker: worker, instance: instance, generation: generation, pid: pid, pidfd: pidfd, notifyFD: notifyFD,
                      notifyAddress: fields[7].isEmpty ? nil : fields[7], binaryID: fields[8], startedAt: startedAt,
                      readyAt: readyAt, lastStatus: fields[11].isEmpty ? nil : fields[11], lastWatchdog: lastWatchdog,
                      restarts: restarts, delay: .nanoseconds(delay))
        }

        /// The pool's view of it (`WorkerPool.adopting`).
        public var adopted: WorkerPool.AdoptedWorker {
            .init(worker: worker, instance: instance, generation: process.generation, binary: process.binaryID, restarts: restarts, delay: delay)
        }
    }
}

import Glibc
import SystemPackage

/// Work that would hold up the event loop (copying, hashing or syncing a
/// large file), run on a thread of its own. `fd` becomes readable when the
/// work is done; the loop then takes the result with `finish()`. The thread
/// inherits the caller's signal mask (overseerd blocks every signal), so it
/// never takes a signal meant for the signalfd.
public final class BackgroundJob<Output: Sendable>: @unchecked Sendable {
    /// Readable once the result is there.
    public let fd: FileDescriptor
    private let doneFD: FileDescriptor
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var output: Output?
    private let work: @Sendable () -> Output

    private init(fd: FileDescriptor, doneFD: FileDescriptor, work: @escaping @Sendable () -> Output) {
        self.fd = fd
        self.doneFD = doneFD
        self.work = work
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    /// Starts `work` on a new thread.
    public static func start(_ work: @escaping @Sendable () -> Output) throws(SystemError) -> BackgroundJob {
        let (read, write) = try Posix.pipe()
        let job = BackgroundJob(fd: read, doneFD: write, work: work)
        let status = job.spawnThread()
        guard status == 0 else {
            Posix.close(write)
            throw SystemError("pthread_create", errno: Errno(rawValue: status))
        }
        return job
    }

    private func spawnThread() -> Int32 {
        // The job stays alive until its thread has run.
        DetachedThread.start { [self] in runOnThread() }
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        Posix.close(fd)
    }

    private func runOnThread() {
        let result = work()
        pthread_mutex_lock(mutex)
        output = result
        pthread_mutex_unlock(mutex)
        // Closing the write end makes the read end readable (EOF): nothing can fail to arrive.
        Posix.close(doneFD)
    }

    /// The result, once `fd` was readable; nil while the work runs.
    public func finish() -> Output? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return output
    }
}

/// A detached thread running `body`. Not generic: a C function pointer cannot
/// capture a generic context, so `BackgroundJob` goes through this.
private final class DetachedThread {
    let body: () -> Void

    private init(_ body: @escaping () -> Void) { self.body = body }

    /// 0, or the error number of pthread_create.
    static func start(_ body: @escaping () -> Void) -> Int32 {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(DetachedThread(body)).toOpaque()
        let status = pthread_create(&thread, nil, { raw in
            Unmanaged<DetachedThread>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, context)
        if status != 0 {
            Unmanaged<DetachedThread>.fromOpaque(context).release()
            return status
        }
        // Cannot fail for a thread just created and neither joined nor detached.
        _ = pthread_detach(thread)
        return 0
    }
}

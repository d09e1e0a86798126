import Foundation

/// Runs the jobs of tasks that prefer it on a thread of its own, not on Swift's
/// cooperative pool. The integration tests in the same run block pool threads
/// while they wait on real processes (there are only as many as cores), so an
/// async test, or a server under test, whose next step waits for a pool thread
/// could wait for minutes under CI's load.
public final class DedicatedThreadExecutor: TaskExecutor, @unchecked Sendable {
    /// One long-lived thread, for servers under test that run beside the test's own body.
    public static let shared = DedicatedThreadExecutor(name: "test-server-executor")

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false

    public init(name: String) {
        let thread = Thread { [self] in runJobs() }
        thread.name = name
        thread.start()
    }

    public func enqueue(_ job: UnownedJob) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Ends the thread once the jobs enqueued so far have run.
    public func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func runJobs() {
        while true {
            condition.lock()
            while jobs.isEmpty, !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// Runs an async test's body on a thread of its own (see `DedicatedThreadExecutor`):
/// each of its awaits resumes there, whatever holds the cooperative pool.
public func onDedicatedThread<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
    let executor = DedicatedThreadExecutor(name: "test-body")
    defer { executor.stop() }
    return try await withTaskExecutorPreference(executor, operation: body)
}

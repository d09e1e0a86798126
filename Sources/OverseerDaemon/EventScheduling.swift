import OverseerSystem
import SystemPackage

/// A watched fd, to unwatch with.
struct WatchToken: Hashable {
    let fd: FileDescriptor
    let id: UInt64
}

/// A scheduled deadline, to cancel with.
struct DeadlineToken: Hashable {
    let id: UInt64
}

/// What the parts of the daemon may ask of the event loop, and nothing more:
/// call me when this fd is readable, call me after this delay. Handlers run on
/// the loop's thread, one at a time.
protocol EventScheduling: AnyObject {
    func watch(_ fd: FileDescriptor, _ handler: @escaping () -> Void) throws(SystemError) -> WatchToken
    /// Calls `handler` whenever `fd` has room to write; an fd is watched one way at a time.
    func watchWritable(_ fd: FileDescriptor, _ handler: @escaping () -> Void) throws(SystemError) -> WatchToken
    /// Stops watching (before the fd is closed).
    func unwatch(_ token: WatchToken)
    func schedule(after delay: Duration, _ handler: @escaping () -> Void) -> DeadlineToken
    /// Cancels a deadline that has not fired; nil and fired ones are ignored.
    func cancel(_ token: DeadlineToken?)
}

extension EventScheduling {
    /// Runs `work` on a thread of its own (`BackgroundJob`); `then` gets its
    /// result on the loop. Throws when the thread or its watch cannot be had;
    /// a thread that started anyway finishes on its own and its result is dropped.
    func inBackground<Output: Sendable>(_ work: @escaping @Sendable () -> Output,
                                        then: @escaping (Output) -> Void) throws(SystemError) {
        let job = try BackgroundJob.start(work)
        var token: WatchToken?
        token = try watch(job.fd) { [unowned self] in
            guard let output = job.finish() else { return }
            if let token { unwatch(token) }
            then(output)
        }
    }
}

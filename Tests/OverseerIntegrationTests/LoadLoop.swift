import Foundation

/// Sends HTTP requests one after another from a background thread until stopped,
/// counting answers, failures and which pids answered.
final class LoadLoop: @unchecked Sendable {
    struct Result {
        var succeeded = 0
        var failures: [String] = []
        var pids: Set<Int32> = []
    }

    private let lock = NSLock()
    private var result = Result()
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    init(port: UInt16, connections: Int = 2) {
        self.connections = connections
        for _ in 0 ..< connections {
            Thread.detachNewThread { [self] in
                while lock.withLock({ running }) {
                    do {
                        let response = try HTTPClient.get(port: port, timeout: 10)
                        lock.withLock {
                            if response.status == 200 {
                                result.succeeded += 1
                                if let pid = response.pid { result.pids.insert(pid) }
                            } else {
                                result.failures.append("status \(response.status)")
                            }
                        }
                    } catch {
                        lock.withLock { result.failures.append("\(error)") }
                    }
                }
                done.signal()
            }
        }
    }

    private let connections: Int

    /// Stops the threads and returns what they saw.
    func stop() -> Result {
        lock.withLock { running = false }
        for _ in 0 ..< connections { done.wait() }
        return lock.withLock { result }
    }

    var succeeded: Int { lock.withLock { result.succeeded } }

    /// Waits until `count` answers have succeeded in all, or `seconds` passed.
    func waitUntilSucceeded(_ count: Int, within seconds: Double = 5) {
        let deadline = Date().addingTimeInterval(seconds)
        while succeeded < count, Date() < deadline { usleep(1000) }
    }
}

import Foundation
import Logging
@testable import OverseerDaemon
import OverseerSystem
import Testing

/// Runs `reactor` until `done` holds or `timeout` passes (a deadline keeps it from sleeping for ever).
func run(_ reactor: Reactor, timeout: Duration = .seconds(5), until done: () -> Bool) throws {
    var expired = false
    let guardDeadline = reactor.schedule(after: timeout) { expired = true }
    defer { reactor.cancel(guardDeadline) }
    while !done() {
        try #require(!expired, "the loop did not get there within \(timeout)")
        try reactor.runOnce()
    }
}


/// Log records kept for the test to look at (levels, not wording).
final class LogRecords: @unchecked Sendable {
    private(set) var entries: [(level: Logger.Level, message: String)] = []
    func append(_ level: Logger.Level, _ message: String) { entries.append((level, message)) }
    func count(_ level: Logger.Level) -> Int { entries.filter { $0.level == level }.count }
}

struct CollectingLogHandler: LogHandler {
    let records: LogRecords
    var logLevel: Logger.Level = .debug
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { records.append(event.level, event.message.description) }
}

func collectingLogger() -> (Logger, LogRecords) {
    let records = LogRecords()
    return (Logger(label: "test") { _ in CollectingLogHandler(records: records) }, records)
}

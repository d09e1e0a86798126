import Foundation
import OverseerCore

// Waiting on what overseerd did, not on how it worded it. With `--log-format
// json` each of overseerd's lines is one object on stderr with a stable `event`
// name (DaemonEvent) and, when the line has them, `generation`, `pid` and
// `binary`; a child's own lines sit between them and are skipped. Tests wait on
// those fields, so that the wording of a message can change without touching a
// test; a test reads `message` only where the text a person reads is the point.

/// One line overseerd wrote with `--log-format json`.
public struct LoggedEvent: Sendable, CustomStringConvertible {
    /// The `event` member as written: a `DaemonEvent` raw value.
    public let name: String
    /// Where it is among overseerd's lines in this run, from 0.
    public let index: Int
    public let level: String
    public let message: String
    public let generation: Int?
    /// The process of the line's generation, when it has one.
    public let pid: Int32?
    /// The SHA-256 the line is about (the generation's binary, or for upgrade
    /// events the binary fetched, installed, rejected or rolled back to).
    public let binary: String?
    /// The line as it was written.
    public let line: String

    /// The event, when this build of the tests knows its name.
    public var event: DaemonEvent? { DaemonEvent(rawValue: name) }

    /// The point just after this line: `after: event.mark` finds only later lines.
    public var mark: LogMark { LogMark(count: index + 1) }

    /// Parses one line of stderr; nil when it is not one of overseerd's JSON lines.
    public init?(line: String, index: Int) {
        guard line.hasPrefix("{"), line.contains("\"logger\":\"overseerd\""),
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        self.name = object["event"] as? String ?? ""
        self.index = index
        self.level = object["level"] as? String ?? ""
        self.message = object["message"] as? String ?? ""
        self.generation = (object["generation"] as? NSNumber)?.intValue
        self.pid = (object["pid"] as? NSNumber).map { Int32(truncatingIfNeeded: $0.intValue) }
        self.binary = object["binary"] as? String
        self.line = line
    }

    public var description: String {
        var text = "#\(index) \(name)"
        if let generation { text += " gen=\(generation)" }
        if let pid { text += " pid=\(pid)" }
        if let binary { text += " bin=\(binary.prefix(12))" }
        return text + ": \(message)"
    }
}

/// A point in overseerd's log: the lines before it are passed over.
public struct LogMark: Comparable, Sendable {
    /// How many of overseerd's lines come before this point.
    public let count: Int

    public init(count: Int) { self.count = count }

    /// Before the first line.
    public static let start = LogMark(count: 0)

    public static func < (lhs: LogMark, rhs: LogMark) -> Bool { lhs.count < rhs.count }
}

extension RunningProcess {
    /// overseerd's JSON lines so far, oldest first.
    public func events() -> [LoggedEvent] {
        pump(timeoutMS: 0)
        return parsedEvents()
    }

    /// The lines of `event` so far (with the given generation or binary when named), oldest first.
    public func events(_ event: DaemonEvent, generation: Int? = nil, binary: String? = nil,
                       after mark: LogMark = .start) -> [LoggedEvent] {
        events(named: event.rawValue, generation: generation, binary: binary, after: mark)
    }

    /// As `events(_:)`, for an event named by its raw name (one this build may not know yet).
    public func events(named name: String, generation: Int? = nil, binary: String? = nil,
                       after mark: LogMark = .start) -> [LoggedEvent] {
        events().filter { Self.matches($0, name, generation, binary, mark) }
    }

    /// The point after everything overseerd has logged so far (what has reached the pipe).
    public var logMark: LogMark {
        pump(timeoutMS: 0)
        return LogMark(count: parsedEvents().count)
    }

    /// Waits for the `occurrence`-th line (from 1) of `event` after `mark`, with
    /// the given generation and binary when named; returns it. Throws at the
    /// deadline, or when overseerd has exited and its stderr has closed, with
    /// what it did log.
    @discardableResult
    public func waitForEvent(_ event: DaemonEvent, generation: Int? = nil, binary: String? = nil,
                             after mark: LogMark = .start, occurrence: Int = 1,
                             timeout: Double = 20) throws -> LoggedEvent {
        try waitForEvent(named: event.rawValue, generation: generation, binary: binary, after: mark,
                         occurrence: occurrence, timeout: timeout)
    }

    /// As `waitForEvent(_:…)`, for an event named by its raw name.
    @discardableResult
    public func waitForEvent(named name: String, generation: Int? = nil, binary: String? = nil,
                             after mark: LogMark = .start, occurrence: Int = 1,
                             timeout: Double = 20) throws -> LoggedEvent {
        try waitForAny(names: [name], generation: generation, binary: binary, after: mark,
                         occurrence: occurrence, timeout: timeout)
    }

    /// As `waitForEvent(_:…)`, for the first line that is any of `events` (e.g. a
    /// generation serving: `generation_ready`, or `restart_succeeded` when another served before it).
    @discardableResult
    public func waitForEvent(anyOf events: [DaemonEvent], generation: Int? = nil, binary: String? = nil,
                             after mark: LogMark = .start, occurrence: Int = 1,
                             timeout: Double = 20) throws -> LoggedEvent {
        try waitForAny(names: events.map(\.rawValue), generation: generation, binary: binary, after: mark,
                         occurrence: occurrence, timeout: timeout)
    }

    private func waitForAny(names: [String], generation: Int?, binary: String?, after mark: LogMark,
                            occurrence: Int, timeout: Double) throws -> LoggedEvent {
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        while true {
            let found = events().filter { event in
                names.contains(event.name) && Self.matches(event, event.name, generation, binary, mark)
            }
            if found.count >= occurrence { return found[occurrence - 1] }
            let ended = exit != nil && stderrClosed
            if ended || ContinuousClock.now >= deadline {
                var wanted = names.joined(separator: " or ")
                if let generation { wanted += " of generation \(generation)" }
                if let binary { wanted += " with binary \(binary.prefix(12))" }
                if occurrence > 1 { wanted += " (occurrence \(occurrence), \(found.count) seen)" }
                if mark.count > 0 { wanted += " after line #\(mark.count - 1)" }
                let why = ended ? "overseerd ended (\(exit!))" : "not within \(timeout)s"
                throw HarnessError("no \(wanted): \(why); overseerd logged:\n"
                    + events().map(\.description).joined(separator: "\n") + "\nstderr was:\n\(stderrText)")
            }
            let left = deadline - ContinuousClock.now
            let (seconds, attoseconds) = left.components
            pump(timeoutMS: Int32(max(0, min(200, seconds * 1000 + attoseconds / 1_000_000_000_000_000))) + 1)
        }
    }

    /// Whether any line of `event` (with the given generation or binary) has been logged after `mark`.
    public func hasLogged(_ event: DaemonEvent, generation: Int? = nil, binary: String? = nil,
                          after mark: LogMark = .start) -> Bool {
        !events(event, generation: generation, binary: binary, after: mark).isEmpty
    }

    private static func matches(_ event: LoggedEvent, _ name: String, _ generation: Int?, _ binary: String?,
                                _ mark: LogMark) -> Bool {
        event.index >= mark.count && event.name == name
            && (generation == nil || event.generation == generation)
            && (binary == nil || event.binary == binary)
    }
}

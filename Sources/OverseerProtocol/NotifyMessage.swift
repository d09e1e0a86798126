/// One sd_notify(3) datagram: newline-separated `KEY=VALUE` assignments.
public struct NotifyMessage: Equatable, Sendable {
    /// The assignments in the order they came; later ones win in lookups.
    public var assignments: [(key: String, value: String)]

    public init(_ assignments: [(key: String, value: String)]) { self.assignments = assignments }

    /// Parses a datagram. Lines without `=` or with an empty key are skipped,
    /// as systemd skips them; bytes that are not UTF-8 are replaced.
    public init(parsing bytes: some Collection<UInt8>) {
        var result: [(key: String, value: String)] = []
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            guard let equals = line.firstIndex(of: UInt8(ascii: "=")), equals != line.startIndex else { continue }
            let key = String(decoding: line[line.startIndex ..< equals], as: UTF8.self)
            let value = String(decoding: line[line.index(after: equals)...], as: UTF8.self)
            result.append((key, value))
        }
        assignments = result
    }

    public subscript(key: String) -> String? {
        assignments.last(where: { $0.key == key })?.value
    }

    /// `READY=1`
    public var isReady: Bool { self["READY"] == "1" }
    /// `STOPPING=1`
    public var isStopping: Bool { self["STOPPING"] == "1" }
    /// `RELOADING=1`
    public var isReloading: Bool { self["RELOADING"] == "1" }
    /// `WATCHDOG=1`
    public var isWatchdogPing: Bool { self["WATCHDOG"] == "1" }
    /// `STATUS=…`
    public var status: String? { self["STATUS"] }

    /// The datagram's text.
    public var encoded: String {
        assignments.map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
    }

    public static func == (lhs: NotifyMessage, rhs: NotifyMessage) -> Bool {
        lhs.assignments.elementsEqual(rhs.assignments) { $0.key == $1.key && $0.value == $1.value }
    }
}

/// At most one warning per key per interval, with a count of the ones held
/// back: a flood of bad input (notify datagrams from a stranger, say) costs a
/// line a second, not a line a message.
public struct WarningThrottle: Sendable {
    public let interval: Duration
    private var lastShown: [String: Int64] = [:]
    private var heldBack: [String: Int] = [:]

    public init(interval: Duration = .seconds(1)) { self.interval = interval }

    /// Whether to show a warning for `key` at `now` (monotonic ns), and how many
    /// were held back since the last one shown.
    public mutating func admit(_ key: String, now: Int64) -> (show: Bool, heldBack: Int) {
        if let last = lastShown[key], now - last < interval.totalNanoseconds {
            heldBack[key, default: 0] += 1
            return (false, 0)
        }
        lastShown[key] = now
        let count = heldBack.removeValue(forKey: key) ?? 0
        return (true, count)
    }

    /// Forgets `key` (its generation is gone).
    public mutating func forget(_ key: String) {
        lastShown[key] = nil
        heldBack[key] = nil
    }
}

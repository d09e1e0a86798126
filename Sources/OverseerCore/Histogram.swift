/// A Prometheus histogram with fixed upper bounds: how many observations fell
/// at or below each bound, their sum and their count. Values are seconds.
public struct Histogram: Equatable, Sendable {
    /// The upper bounds (`le`), ascending; `+Inf` is implied.
    public let bounds: [Double]
    /// Observations at or below each bound (cumulative, as exposed), one per bound.
    public private(set) var cumulativeCounts: [UInt64]
    public private(set) var sum: Double = 0
    public private(set) var count: UInt64 = 0

    /// Durations from 5 ms to a minute: a restart, or a child's way to ready.
    public static let durationBounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

    public init(bounds: [Double] = Histogram.durationBounds) {
        self.bounds = bounds
        cumulativeCounts = Array(repeating: 0, count: bounds.count)
    }

    /// Counts one observation; negative values (a clock that cannot go back did) count as 0.
    public mutating func observe(_ value: Double) {
        let value = max(value, 0)
        for index in bounds.indices where value <= bounds[index] { cumulativeCounts[index] += 1 }
        sum += value
        count += 1
    }
}

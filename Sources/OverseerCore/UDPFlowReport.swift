import OverseerProtocol

/// One UDP listener's flows, as `status` and the metrics show them.
public struct UDPFlowReport: Equatable, Sendable {
    public let name: String
    public let address: String
    public let mode: UDPFlowMode
    /// Why steering was asked for and cannot be had.
    public let fallbackReason: String?
    /// Live flows (seen within the flow timeout) per living generation (steered only).
    public var flows: [Int: UInt64] = [:]
    /// Flows taken while no generation lived, waiting in the spare socket for the next one.
    public var waiting: UInt64 = 0
    /// The flow table could not be read.
    public var countError: String?
    /// How old the count is; nil while the first one runs.
    public var countedSecondsAgo: Int?

    public init(name: String, address: String, mode: UDPFlowMode, fallbackReason: String?) {
        self.name = name
        self.address = address
        self.mode = mode
        self.fallbackReason = fallbackReason
    }

    /// `udp NAME (ADDRESS): steered, flows: generation 3: 12, generation 4: 1`.
    public var statusLine: String {
        var line = "udp \(name) (\(address)): \(mode)"
        if let fallbackReason { line += " (\(fallbackReason))" }
        guard mode == .steered else { return line }
        if let countError { return line + ", flows unknown: \(countError)" }
        guard let age = countedSecondsAgo else { return line + ", flows: being counted" }
        var parts = flows.keys.sorted().map { "generation \($0): \(flows[$0]!)" }
        if waiting > 0 { parts.append("waiting for a generation: \(waiting)") }
        return line + ", flows: " + (parts.isEmpty ? "none" : parts.joined(separator: ", ")) + (age > 1 ? " (counted \(age)s ago)" : "")
    }

    public var json: JSONText {
        .object([
            ("name", .string(name)), ("address", .string(address)), ("mode", .string(mode.description)),
            ("fallback_reason", fallbackReason.map { .string($0) } ?? .null),
            ("flows", mode == .steered && countError == nil && countedSecondsAgo != nil ? .array(flows.keys.sorted().map { generation in
                .object([("generation", .integer(Int64(generation))), ("flows", .integer(Int64(flows[generation]!)))])
            }) : .null),
            ("waiting_flows", .integer(Int64(waiting))),
            ("flows_counted_seconds_ago", countedSecondsAgo.map { .integer(Int64($0)) } ?? .null),
        ])
    }

    /// The `overseerd_udp_*` families for these listeners (none without UDP listeners).
    public static func metricsText(_ reports: [UDPFlowReport]) -> String {
        guard !reports.isEmpty else { return "" }
        var out = MetricsText()
        out.family("overseerd_udp_listener_steered", .gauge,
                   help: "1 when the UDP listener keeps each flow with its generation (--udp-flows steered), 0 when generations share one socket.")
        for report in reports {
            out.sample("overseerd_udp_listener_steered", [("listener", report.name)], UInt64(report.mode == .steered ? 1 : 0))
        }
        out.family("overseerd_udp_flows", .gauge, help: "Live UDP flows of a steered listener per generation (generation 0: waiting for one).")
        for report in reports where report.mode == .steered && report.countError == nil && report.countedSecondsAgo != nil {
            for generation in report.flows.keys.sorted() {
                out.sample("overseerd_udp_flows", [("listener", report.name), ("generation", String(generation))], report.flows[generation]!)
            }
            out.sample("overseerd_udp_flows", [("listener", report.name), ("generation", "0")], report.waiting)
        }
        return out.text
    }
}

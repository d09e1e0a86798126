/// How the datagrams of a `--listen udp:` listener reach the generations.
public enum UDPFlowMode: Equatable, Sendable, CustomStringConvertible {
    /// Each generation has its own socket in one SO_REUSEPORT group; a BPF
    /// program keeps each flow (4-tuple) with the generation that took it and
    /// sends new flows to the newest ready one.
    case steered
    /// One socket shared by every generation: whichever reads first gets the datagram.
    case shared

    /// `--udp-flows VALUE` as written.
    public init(parsing text: String) throws(ConfigurationError) {
        switch text.lowercased() {
        case "steered", "keep": self = .steered
        case "shared": self = .shared
        default: throw ConfigurationError("bad --udp-flows \"\(text)\": write steered (each flow stays with its generation) or shared (one socket for all)")
        }
    }

    public var description: String {
        switch self {
        case .steered: "steered"
        case .shared: "shared"
        }
    }

    /// The mode one listener gets, and why it is not the one asked for.
    public struct Decision: Equatable, Sendable {
        public let mode: UDPFlowMode
        /// Set when steering was asked for and cannot be had: said once, in a warning.
        public let fallbackReason: String?

        public init(mode: UDPFlowMode, fallbackReason: String?) {
            self.mode = mode
            self.fallbackReason = fallbackReason
        }
    }

    /// What one listener gets: `requested` (`--udp-flows`) for a UDP socket that can
    /// have a SO_REUSEPORT group (one overseerd bound, or one inherited with
    /// SO_REUSEPORT), when the program could be loaded (`steeringUnavailable` is why
    /// not). Anything but UDP has no mode (nil).
    public static func decide(requested: UDPFlowMode, kind: String, inherited: Bool, hasReusePort: Bool,
                              steeringUnavailable: String?) -> Decision? {
        guard kind == "udp" else { return nil }
        guard requested == .steered else { return Decision(mode: .shared, fallbackReason: nil) }
        if inherited, !hasReusePort {
            return Decision(mode: .shared, fallbackReason: "the inherited socket was bound without SO_REUSEPORT (give its .socket unit ReusePort=yes)")
        }
        if let steeringUnavailable { return Decision(mode: .shared, fallbackReason: steeringUnavailable) }
        return Decision(mode: .steered, fallbackReason: nil)
    }
}

extension ListenAddress {
    /// A `udp:` address: its generations' datagrams may be steered (`UDPFlowMode`).
    public var isUDP: Bool {
        if case let .inet(_, _, transport) = self { return transport == .datagram }
        return false
    }
}

/// A name for an inherited socket, as systemd's `FileDescriptorName=` allows:
/// 1 to 255 printable ASCII characters, no `:` (the separator in LISTEN_FDNAMES).
public struct SocketName: Hashable, Sendable, CustomStringConvertible {
    /// The name systemd gives sockets that have none, and overseerd gives listeners without `NAME=`.
    public static let unnamed = SocketName(unchecked: "unknown")

    public let rawValue: String

    /// Checks `rawValue` against systemd's rules.
    public init(_ rawValue: String) throws(ProtocolError) {
        guard !rawValue.isEmpty else { throw .badSocketName(rawValue, reason: "it is empty") }
        guard rawValue.utf8.count <= 255 else {
            throw .badSocketName(rawValue, reason: "it is longer than 255 characters")
        }
        for byte in rawValue.utf8 where byte < 0x21 || byte > 0x7e || byte == UInt8(ascii: ":") {
            throw .badSocketName(rawValue, reason: "only printable ASCII without ':' or spaces is allowed")
        }
        self.rawValue = rawValue
    }

    init(unchecked rawValue: String) { self.rawValue = rawValue }

    public var description: String { rawValue }
}

/// JSON for overseerd's machine-readable answers (`status --json`): written, never parsed.
public indirect enum JSONText: Equatable, Sendable {
    case string(String)
    case integer(Int64)
    case bool(Bool)
    case null
    case array([JSONText])
    /// Members in the order given.
    case object([(String, JSONText)])

    public var encoded: String {
        switch self {
        case let .string(text): JSONValue.quote(text)
        case let .integer(value): String(value)
        case let .bool(value): value ? "true" : "false"
        case .null: "null"
        case let .array(items): "[" + items.map(\.encoded).joined(separator: ",") + "]"
        case let .object(members): "{" + members.map { JSONValue.quote($0.0) + ":" + $0.1.encoded }.joined(separator: ",") + "}"
        }
    }

    public static func == (lhs: JSONText, rhs: JSONText) -> Bool { lhs.encoded == rhs.encoded }
}

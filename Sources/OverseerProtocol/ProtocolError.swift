/// What is wrong with an environment variable or message of the child contract.
public struct ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }

    static func badSocketName(_ name: String, reason: String) -> ProtocolError {
        ProtocolError("bad socket name \"\(name)\": \(reason)")
    }
    static func badVariable(_ name: String, value: String, reason: String) -> ProtocolError {
        ProtocolError("bad \(name)=\(value): \(reason)")
    }
}

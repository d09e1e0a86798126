/// A configuration mistake, worded for the person who made it: what is wrong and how to write it instead.
public struct ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }
}

import Glibc

/// overseerd's own environment, read once at start, in its original order.
public struct ProcessEnvironment: Sendable {
    public let entries: [(name: String, value: String)]

    public init(entries: [(name: String, value: String)]) { self.entries = entries }

    public var dictionary: [String: String] {
        Dictionary(entries.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    public static func current() -> ProcessEnvironment {
        var entries: [(String, String)] = []
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                entries.append((String(text[..<equals]), String(text[text.index(after: equals)...])))
            }
            pointer += 1
        }
        return ProcessEnvironment(entries: entries)
    }
}

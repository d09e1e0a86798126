import Glibc

/// The process environment, read where a variable is needed.
enum Environment {
    /// The value of `name`, or nil when it is unset or empty.
    static func value(_ name: String) -> String? {
        guard let pointer = getenv(name) else { return nil }
        let text = String(cString: pointer)
        return text.isEmpty ? nil : text
    }
}

import SystemPackage

/// A system call that failed: which one, on what, and the errno.
public struct SystemError: Error, Sendable, CustomStringConvertible {
    /// The call, e.g. `bind`.
    public let call: String
    /// What it was called on, e.g. `0.0.0.0:80`.
    public let subject: String?
    public let errno: Errno

    public init(_ call: String, on subject: String? = nil, errno: Errno) {
        self.call = call
        self.subject = subject
        self.errno = errno
    }

    /// `Errno(rawValue: Glibc.errno)` of the call that just failed.
    public static func last(_ call: String, on subject: String? = nil) -> SystemError {
        SystemError(call, on: subject, errno: Errno(rawValue: Posix.errno))
    }

    /// Lower-case, as in a log line: `permission denied`.
    public var reason: String {
        let text = errno.description
        guard let first = text.first else { return text }
        return first.lowercased() + text.dropFirst()
    }

    public var description: String {
        if let subject { return "\(call)(\(subject)) failed: \(reason)" }
        return "\(call) failed: \(reason)"
    }
}

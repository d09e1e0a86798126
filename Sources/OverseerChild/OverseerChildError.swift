import Glibc

/// Something a program asked of ``OverseerChild`` that could not be done: a
/// socket it was not given, a notification that could not be sent, a socket it
/// could not bind itself.
///
/// New kinds of failure may be added; compare ``code`` rather than switching
/// exhaustively.
public struct OverseerChildError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case noSocket, notifyFailed, bindFailed, badAddress, socketCallFailed, stopWatchFailed
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// No socket with the asked-for name or index was passed to this process.
        public static let noSocket = Code(.noSocket)
        /// A message could not be sent to NOTIFY_SOCKET.
        public static let notifyFailed = Code(.notifyFailed)
        /// The fallback could not bind or listen on its own socket.
        public static let bindFailed = Code(.bindFailed)
        /// A fallback address could not be understood or resolved.
        public static let badAddress = Code(.badAddress)
        /// A system call on a socket failed.
        public static let socketCallFailed = Code(.socketCallFailed)
        /// The library could not set up its watch for stop signals (no fd or thread to spare).
        public static let stopWatchFailed = Code(.stopWatchFailed)

        /// The name of the kind, for logs.
        public var description: String { "\(value)" }
    }

    /// What kind of failure this is.
    public let code: Code
    /// What failed, on what, and what to do about it, in one line.
    public let description: String

    init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }

    /// The error for a socket named `name` that is not among `available`.
    static func noSocket(named name: String, available: [String], problem: String? = nil) -> OverseerChildError {
        var text = "no inherited socket named \(name)"
        if let problem {
            text += " (\(problem); the sockets were ignored)"
        } else if available.isEmpty {
            text += " (none were passed: run under overseerd, e.g. overseerd -l \(name)=127.0.0.1:8080 -- PROGRAM)"
        } else {
            text += " (passed: " + available.joined(separator: ", ") + "; name them with overseerd -l NAME=ADDRESS)"
        }
        return OverseerChildError(.noSocket, text)
    }

    static func notifyFailed(_ reason: String) -> OverseerChildError {
        OverseerChildError(.notifyFailed, "cannot notify: \(reason)")
    }
}

/// Errno as text, with its number: `connection refused (errno 111)`.
func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text).lowercased() + " (errno \(code))"
}

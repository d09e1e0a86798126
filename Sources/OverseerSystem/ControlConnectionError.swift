/// Why a `ControlConnection` could not carry a request and its answer: one
/// line for the person at the terminal, and which kind of failure it was.
public struct ControlConnectionError: Error, Sendable, CustomStringConvertible {
    enum Code: Sendable {
        case badPath
        case cannotConnect(SystemError)
        case untrustedServer(uid: UInt32, pid: Int32, own: UInt32)
        case noAnswer
        case answerTooLong
        case failed(SystemError)
    }

    /// The control socket's path, as given.
    public let path: String
    let code: Code

    init(_ path: String, _ code: Code) {
        self.path = path
        self.code = code
    }

    /// No overseerd that this user may believe is there: nothing listens at
    /// the path, or what listens is run by another user.
    public var isUnreachable: Bool {
        switch code {
        case .cannotConnect, .untrustedServer: true
        default: false
        }
    }

    /// The path cannot name a unix socket (empty, too long, a NUL byte).
    public var isBadPath: Bool {
        if case .badPath = code { return true }
        return false
    }

    /// The daemon did not answer before the deadline.
    public var isTimeout: Bool {
        if case .noAnswer = code { return true }
        return false
    }

    public var description: String {
        switch code {
        case .badPath:
            return "bad control socket path \"\(path)\": give a path of 1 to 107 bytes"
        case let .cannotConnect(error):
            return "cannot reach overseerd at \(path): \(error.reason) — is it running? give --control-socket PATH"
        case let .untrustedServer(uid, pid, own):
            let trusted = own == 0 ? "by root" : "by root or uid \(own) (you)"
            return "not asking the control socket at \(path): it is served by uid \(uid) (pid \(pid)), not \(trusted), so it is not your overseerd — remove it and its directory, or give --control-socket PATH"
        case .noAnswer:
            return "no answer from overseerd at \(path)"
        case .answerTooLong:
            return "the answer from \(path) is over \(ControlConnection.maximumAnswerLength) bytes: that is not overseerd"
        case let .failed(error):
            return "lost the connection to overseerd at \(path): \(error.description)"
        }
    }
}

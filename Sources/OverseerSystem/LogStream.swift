import Glibc
import Synchronization
import SystemPackage

/// overseerd's own lines on stderr, written so that a write never blocks: a
/// reader that stalls (a pipe nobody reads, filled by the child that shares
/// it) costs dropped lines, counted, never a frozen event loop.
///
/// stderr's open file description is shared with the child, so its
/// `O_NONBLOCK` cannot be set without changing the child's stderr. Instead:
/// - a pipe, FIFO or terminal is opened again through `/proc/self/fd/2`, which
///   gives a file description of overseerd's own, non-blocking;
/// - a socket (journald's stream, when the format is text) is written with
///   `send(MSG_DONTWAIT)`, non-blocking for that call only;
/// - a regular file (or anything that cannot be reopened) is written as it
///   is: a write to a file does not wait for a reader.
/// A line the stream cannot take now is dropped and counted; a line cut short
/// by a full pipe (only lines over PIPE_BUF, 4096 bytes, can be) has its rest
/// written before the next line, or dropped with it.
public final class LogStream: Sendable {
    /// How lines reach the stream.
    public enum Mode: Equatable, Sendable {
        /// A non-blocking file description of overseerd's own (a pipe, FIFO or terminal).
        case reopened
        /// `send(MSG_DONTWAIT | MSG_NOSIGNAL)` on the shared socket.
        case socket
        /// `write` on the shared fd, which may block (a regular file does not).
        case direct
    }

    /// overseerd's stderr, set up the first time it is used.
    public static let standardError = LogStream(fd: STDERR_FILENO, reopenPath: "/proc/self/fd/2")

    public let mode: Mode
    private let fd: Int32
    private let state = Mutex(State())

    private struct State {
        var rest: [UInt8] = []
        var dropped = 0
        var unreported = 0
    }

    /// The stream writing to `fd`, reopened through `reopenPath` when it is a pipe, FIFO or terminal.
    public init(fd: Int32, reopenPath: String) {
        var info = stat()
        let kind = fstat(fd, &info) == 0 ? info.st_mode & S_IFMT : 0
        if kind == S_IFIFO || kind == S_IFCHR {
            let own = open(reopenPath, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
            if own >= 0 {
                self.fd = own
                self.mode = .reopened
                return
            }
        }
        self.fd = fd
        self.mode = kind == S_IFSOCK ? .socket : .direct
    }

    /// The fd to wait on for room (`poll`/epoll for writing), nil when writes
    /// go to the shared fd as they are (`direct`: a file, which always has room).
    public var pollable: FileDescriptor? { mode == .direct ? nil : FileDescriptor(rawValue: fd) }

    /// Whether a line would be taken now (always true for `direct`).
    public var hasRoom: Bool {
        guard mode != .direct else { return true }
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        return poll(&entry, 1, 0) == 1 && entry.revents & Int16(POLLOUT) != 0
    }

    /// Lines dropped since this process started.
    public var droppedLines: Int { state.withLock { $0.dropped } }

    /// Writes `text` (`lines` lines) whole, or drops it. Returns the lines
    /// dropped since the last call that returned them (to be said in a later
    /// line), or 0.
    @discardableResult
    public func write(_ text: String, lines: Int = 1) -> Int {
        state.withLock { state in
            if !state.rest.isEmpty {
                let rest = state.rest
                state.rest = []
                switch put(rest) {
                case .written: break
                case let .partly(count): state.rest = Array(rest[count...])
                case .refused: state.rest = rest
                }
                if !state.rest.isEmpty {
                    state.dropped += lines
                    state.unreported += lines
                    return 0
                }
            }
            let bytes = Array(text.utf8)
            switch put(bytes) {
            case .written:
                defer { state.unreported = 0 }
                return state.unreported
            case let .partly(count):
                state.rest = Array(bytes[count...])
                return 0
            case .refused:
                state.dropped += lines
                state.unreported += lines
                return 0
            }
        }
    }

    private enum Outcome { case written, partly(Int), refused }

    private func put(_ bytes: [UInt8]) -> Outcome {
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                let start = buffer.baseAddress! + done
                return mode == .socket ? send(fd, start, bytes.count - done, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                                       : Glibc.write(fd, start, bytes.count - done)
            }
            if count > 0 {
                done += count
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                // EAGAIN: the reader stalls. EPIPE, EIO, ...: nobody can read it; nothing to do either.
                return done == 0 ? .refused : .partly(done)
            }
        }
        return .written
    }
}

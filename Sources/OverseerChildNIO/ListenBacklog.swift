import OverseerChild

/// Which backlog an inherited listener has after SwiftNIO took it over.
///
/// SwiftNIO's `ServerBootstrap.withBoundSocket(_:)` (and the async
/// `bind(_:childChannelInitializer:)` from a socket) calls `listen()` on the
/// socket again with its own backlog, 128, while it wraps the fd and before any
/// `.backlog` channel option could apply. The backlog belongs to the socket,
/// which every generation shares, so that would shrink overseerd's queue (4096
/// unless `--backlog` says otherwise) for all of them. The adapter calls
/// `listen()` once more, with this value, as soon as NIO is done.
public enum ListenBacklog: Sendable, Hashable {
    /// The backlog the socket had before NIO touched it (read as `ss -l` reads
    /// it; see ``OverseerChild/InheritedSocket/listenBacklog``), or
    /// `net.core.somaxconn` when the kernel does not tell.
    case keep
    /// This many.
    case value(Int32)

    /// The number to `listen()` with for `socket`, read before NIO takes it over.
    func resolve(for socket: InheritedSocket) -> Int32 {
        switch self {
        case let .value(value):
            return value
        case .keep:
            let known = socket.listenBacklog ?? InheritedSocket.systemMaximumBacklog ?? 4096
            return Int32(clamping: known)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import OverseerChild

/// What is wrong with a socket handed to ``NIOPosix/ServerBootstrap/withInheritedSocket(_:backlog:)``.
public struct InheritedListenerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What failed, on which socket, and what to do.
    public let description: String
}

extension ServerBootstrap {
    /// Serves on a listening stream socket this process inherited (TCP or unix),
    /// as NIO's `withBoundSocket(_:)` does, without shrinking its backlog.
    ///
    /// What happens to the socket, which every generation shares:
    /// - NIO owns the fd from now on and closes it (`close()`, never
    ///   `shutdown()`) when the channel closes: this process stops accepting,
    ///   the other generations and overseerd keep the socket.
    /// - NIO sets `O_NONBLOCK`, a flag of the shared open file description:
    ///   every generation's `accept()` is non-blocking from now on, and stays so
    ///   after this process exits. Programs sharing the socket must tolerate
    ///   `EAGAIN` from `accept()`. Never clear the flag again: a NIO generation
    ///   still running would then block in `accept()`.
    /// - NIO calls `listen(fd, 128)`; this method then calls `listen()` again
    ///   with `backlog` (by default the one the socket had), so the queue stays
    ///   as overseerd made it, but for the microseconds in between.
    ///
    /// - Throws: ``InheritedListenerError`` when the fd is not a listening stream
    ///   socket (a UDP socket needs `DatagramBootstrap(group:).withBoundSocket(_:)`).
    public func withInheritedSocket(_ socket: InheritedSocket, backlog: ListenBacklog = .keep) throws
        -> EventLoopFuture<Channel>
    {
        let kept = try InheritedListener.check(socket, backlog: backlog)
        let fd = socket.fd
        return withBoundSocket(fd).map { channel in
            InheritedListener.restoreBacklog(fd, kept)
            return channel
        }
    }

    /// Serves on a listening stream socket this process inherited, as NIO's
    /// async `bind(_:childChannelInitializer:)` from a socket does, without
    /// shrinking its backlog. The rules of
    /// ``withInheritedSocket(_:backlog:)`` apply.
    public func bind<Output: Sendable>(
        inherited socket: InheritedSocket,
        backlog: ListenBacklog = .keep,
        serverBackPressureStrategy: NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark? = nil,
        childChannelInitializer: @escaping @Sendable (Channel) -> EventLoopFuture<Output>
    ) async throws -> NIOAsyncChannel<Output, Never> {
        let kept = try InheritedListener.check(socket, backlog: backlog)
        let channel = try await bind(socket.fd, serverBackPressureStrategy: serverBackPressureStrategy,
                                     childChannelInitializer: childChannelInitializer)
        InheritedListener.restoreBacklog(socket.fd, kept)
        return channel
    }
}

enum InheritedListener {
    /// Checks that NIO can serve on `socket` and returns the backlog to restore.
    static func check(_ socket: InheritedSocket, backlog: ListenBacklog) throws -> Int32 {
        guard let type = socket.type else {
            throw InheritedListenerError(description: "\(socket.name) (fd \(socket.fd)) is not an open socket")
        }
        guard type == .stream else {
            throw InheritedListenerError(description:
                "\(socket.description) is a \(type) socket: serve it with DatagramBootstrap(group:).withBoundSocket(_:)")
        }
        guard socket.isListening else {
            throw InheritedListenerError(description: "\(socket.description) is not listening: overseerd hands out listening sockets; who gave this one?")
        }
        return backlog.resolve(for: socket)
    }

    /// `listen()` again after NIO's `listen(fd, 128)`. On a listening socket
    /// Linux only sets the new limit; queued connections stay.
    static func restoreBacklog(_ fd: Int32, _ backlog: Int32) {
        _ = listen(fd, backlog)
    }
}

import COverseerShims
import SystemPackage

/// inotify on the directory of a watched file, so that an atomic rename by a
/// deploy tool (write elsewhere, then `mv`) is seen as well as writes in place.
public struct FileWatcher: Sendable {
    public enum Change: Equatable, Sendable {
        case none
        /// Created or written in place, not yet closed: a writer is still at work.
        case beingWritten
        /// A writer closed the file after writing it.
        case closedAfterWriting
        /// Renamed into place, as deploy tools do: complete.
        case renamedIntoPlace
        case directoryGone
    }

    public let fd: FileDescriptor
    public let name: String

    public init(path: String) throws(SystemError) {
        let (directory, name) = Installer.split(path)
        let fd = overseer_inotify_watch_directory(directory)
        guard fd >= 0 else { throw .last("inotify_add_watch", on: directory) }
        self.fd = FileDescriptor(rawValue: fd)
        self.name = name
    }

    /// Reads the pending events: what happened to the watched file, the most telling first.
    public func drain() -> Change {
        let bits = overseer_inotify_drain(fd.rawValue, name)
        if bits < 0 { return .none }
        if bits & Int32(OVERSEER_INOTIFY_DIRECTORY_GONE) != 0 { return .directoryGone }
        if bits & Int32(OVERSEER_INOTIFY_RENAMED) != 0 { return .renamedIntoPlace }
        if bits & Int32(OVERSEER_INOTIFY_CLOSED_AFTER_WRITING) != 0 { return .closedAfterWriting }
        if bits & Int32(OVERSEER_INOTIFY_CHANGED) != 0 { return .beingWritten }
        return .none
    }

    public func close() { Posix.close(fd) }
}

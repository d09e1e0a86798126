import COverseerShims
import OverseerSystem
import SystemPackage

/// inotify on the directory of a watched file, so that an atomic rename by a
/// deploy tool (write elsewhere, then `mv`) is seen as well as writes in place.
public struct FileWatcher: Sendable {
    public enum Change: Sendable {
        case none
        /// Written or created in place: it may still be growing.
        case file
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

    /// Reads the pending events: did any concern the watched file?
    public func drain() -> Change {
        switch overseer_inotify_drain(fd.rawValue, name) {
        case 1: .file
        case 2: .directoryGone
        case 3: .renamedIntoPlace
        default: .none
        }
    }

    public func close() { Posix.close(fd.rawValue) }
}

import Glibc

/// A small file replaced whole: written beside, fsync'd, renamed over, and
/// the directory fsync'd, so that a crash leaves the old file or the new one.
public enum AtomicFile {
    public static func write(_ text: String, to path: String, mode: UInt32 = 0o600) throws(SystemError) {
        let (directory, name) = Installer.split(path)
        let temporary = "\(directory)/.\(name).tmp-\(String(UInt32.random(in: 0 ... .max), radix: 16))"
        let fd = try Posix.retrying("open", on: temporary) { open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode)) }
        do {
            defer { Posix.close(fd) }
            try Posix.writeAll(.init(rawValue: fd), Array(text.utf8))
            try Posix.retrying("fsync", on: temporary) { fsync(fd) }
        } catch {
            _ = unlink(temporary)
            throw error
        }
        do {
            try Posix.retrying("rename", on: path) { rename(temporary, path) }
        } catch {
            _ = unlink(temporary)
            throw error
        }
        Installer.syncDirectory(directory)
    }
}

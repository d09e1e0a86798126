import CSystemd
import Glibc
import SystemPackage

/// journald's native protocol, through libsystemd's `sd_journal_sendv`: one
/// datagram per entry to /run/systemd/journal/socket, fields as given.
public enum JournalSocket {
    /// Where journald listens for native entries.
    public static let path = "/run/systemd/journal/socket"

    /// Whether journald's native socket is there. libsystemd drops an entry
    /// without a word when it is not, so this is asked before choosing the journal.
    public static var isAvailable: Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return info.st_mode & S_IFMT == S_IFSOCK
    }

    /// Sends one entry made of `fields` (`NAME=value`; a value may hold any byte,
    /// newlines included). Returns the error when journald did not get it.
    public static func send(_ fields: [String]) -> Errno? {
        guard !fields.isEmpty else { return nil }
        var bytes: [UInt8] = []
        var ranges: [(start: Int, count: Int)] = []
        for field in fields {
            let start = bytes.count
            bytes.append(contentsOf: field.utf8)
            ranges.append((start, bytes.count - start))
        }
        let result: Int32 = bytes.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return -EINVAL }
            let vectors = ranges.map { iovec(iov_base: base + $0.start, iov_len: $0.count) }
            return sd_journal_sendv(vectors, Int32(vectors.count))
        }
        return result < 0 ? Errno(rawValue: -result) : nil
    }
}

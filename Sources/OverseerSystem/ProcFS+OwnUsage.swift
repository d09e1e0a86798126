import Glibc
import OverseerCore

extension ProcFS {
    /// overseerd's own memory, fds and CPU time, from /proc/self. Each needs
    /// one fd for a moment; with the fd table full, that figure is left out
    /// (nil) and the others are still given.
    public static func ownUsage() -> ProcessUsage {
        var usage = ProcessUsage()
        // /proc/self/stat after the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
        if let fields = statFields(path: "/proc/self/stat"), fields.count > 12,
           let user = UInt64(String(decoding: fields[11], as: UTF8.self)),
           let system = UInt64(String(decoding: fields[12], as: UTF8.self)) {
            usage.cpuSeconds = Double(user + system) / Double(max(sysconf(Int32(_SC_CLK_TCK)), 1))
        }
        // statm: size resident shared …, in pages.
        if let fields = statFields(path: "/proc/self/statm", afterName: false), fields.count > 1,
           let pages = UInt64(String(decoding: fields[1], as: UTF8.self)) {
            usage.residentBytes = pages * UInt64(max(sysconf(Int32(_SC_PAGESIZE)), 1))
        }
        usage.openFDs = countOwnFDs()
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max { usage.maxFDs = UInt64(limit.rlim_cur) }
        return usage
    }

    /// Entries of /proc/self/fd, without the directory's own fd; counted as
    /// read (glibc's one buffer per open directory), never collected.
    static func countOwnFDs() -> UInt64? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count: UInt64 = 0
        while let entry = readdir(directory) {
            let dot = withUnsafeBytes(of: entry.pointee.d_name) { $0[0] == UInt8(ascii: ".") }
            if !dot { count += 1 }
        }
        // The directory's own fd is among them.
        return count > 0 ? count - 1 : 0
    }
}

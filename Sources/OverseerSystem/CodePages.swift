import Glibc

/// The pages of machine code this process has mapped: most were touched once,
/// at start (parsing the command line, binding, the first spawn), and would stay
/// in its resident set for good. `release()` drops them from its page tables
/// (`MADV_DONTNEED` on its executable, private, file-backed mappings): they stay
/// in the page cache, shared and clean, and the few a later restart needs come
/// back with a minor fault each. Only `r-xp` mappings are touched: code is never
/// written, so nothing is lost (unlike data, or RELRO pages that relocations wrote).
public enum CodePages {
    public struct Mapping: Equatable, Sendable {
        public var start: UInt
        public var end: UInt

        public init(start: UInt, end: UInt) {
            self.start = start
            self.end = end
        }
    }

    /// The executable, private, file-backed mappings listed in `maps` (/proc/PID/maps text).
    public static func codeMappings(in maps: String) -> [Mapping] {
        maps.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // address perms offset dev inode path
            guard fields.count >= 6, fields[1] == "r-xp", fields[4] != "0", fields[5].hasPrefix("/") else { return nil }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16),
                  start < end else { return nil }
            return Mapping(start: start, end: end)
        }
    }

    /// Drops this process's code pages from its resident set; returns how many bytes of mappings were advised.
    @discardableResult
    public static func release() -> Int {
        guard let maps = SmallFile.read("/proc/self/maps", limit: 1 << 20) else { return 0 }
        var advised = 0
        for mapping in codeMappings(in: maps) {
            guard let address = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            let length = Int(mapping.end - mapping.start)
            // Fails only for a range that is not mapped (it went away): nothing to drop then.
            if madvise(address, length, MADV_DONTNEED) == 0 { advised += length }
        }
        return advised
    }

    /// This process's minor page faults so far: dropped code pages that came back count here.
    public static var minorFaults: Int {
        var usage = rusage()
        // RUSAGE_SELF with a valid pointer cannot fail.
        _ = getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_minflt
    }
}

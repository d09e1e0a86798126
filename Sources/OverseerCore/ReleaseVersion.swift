/// Release versions as fleets write them (`2.0.0`, `v1.10.2`, `2.0.0-rc.1`),
/// ordered the way semantic versioning orders them: dot-separated parts
/// compared as numbers where both are numbers, a pre-release (`-…`) before
/// its release, build metadata (`+…`) ignored. A leading `v` is ignored.
public enum ReleaseVersion {
    /// Whether `a` comes before `b`.
    public static func isOlder(_ a: String, than b: String) -> Bool { compare(a, b) < 0 }

    /// -1, 0 or 1.
    public static func compare(_ a: String, _ b: String) -> Int {
        let (aMain, aPre) = split(a)
        let (bMain, bPre) = split(b)
        let main = compareParts(aMain, bMain, missingIsZero: true)
        if main != 0 { return main }
        switch (aPre, bPre) {
        case (nil, nil): return 0
        case (nil, _): return 1
        case (_, nil): return -1
        case let (x?, y?): return compareParts(x, y, missingIsZero: false)
        }
    }

    private static func split(_ version: String) -> (main: [Substring], pre: [Substring]?) {
        var text = Substring(version)
        if text.first == "v" || text.first == "V" { text = text.dropFirst() }
        if let plus = text.firstIndex(of: "+") { text = text[..<plus] }
        var pre: [Substring]?
        if let dash = text.firstIndex(of: "-") {
            pre = text[text.index(after: dash)...].split(separator: ".", omittingEmptySubsequences: false)
            text = text[..<dash]
        }
        return (text.split(separator: ".", omittingEmptySubsequences: false), pre)
    }

    private static func compareParts(_ a: [Substring], _ b: [Substring], missingIsZero: Bool) -> Int {
        for index in 0 ..< max(a.count, b.count) {
            let x = index < a.count ? a[index] : nil
            let y = index < b.count ? b[index] : nil
            // In a pre-release, fewer parts come first (1.0.0-rc < 1.0.0-rc.1).
            guard let x else { return missingIsZero && y.map(isZero) == true ? 0 : -1 }
            guard let y else { return missingIsZero && isZero(x) ? 0 : 1 }
            let order: Int
            if let m = UInt64(x), let n = UInt64(y) {
                order = m == n ? 0 : (m < n ? -1 : 1)
            } else if UInt64(x) != nil {
                order = -1 // numbers before words
            } else if UInt64(y) != nil {
                order = 1
            } else {
                order = x == y ? 0 : (x < y ? -1 : 1)
            }
            if order != 0 { return order }
        }
        return 0
    }

    private static func isZero(_ part: Substring) -> Bool { UInt64(part) == 0 }
}

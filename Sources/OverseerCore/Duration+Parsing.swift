extension Duration {
    /// As `init(parsing:)`, for the value given to `--option`: the error names it
    /// ("bad --probation: bad duration …").
    public init(parsing text: String, option: String) throws(ConfigurationError) {
        do {
            try self.init(parsing: text)
        } catch {
            throw ConfigurationError("bad --\(option): \(error)")
        }
    }

    /// Parses the durations overseerd's flags take: a number followed by a unit
    /// (`us`, `ms`, `s`, `m`, `h`), several in a row allowed (`1m30s`), fractions
    /// allowed (`1.5s`), and a bare `0`.
    public init(parsing text: String) throws(ConfigurationError) {
        let bad = ConfigurationError("bad duration \"\(text)\": write it with a unit, e.g. 500ms, 10s, 5m or 1h30m")
        let tooLarge = ConfigurationError("bad duration \"\(text)\": too large; write at most 277777h (about 31 years)")
        if text == "0" { self = .zero; return }
        if text.hasPrefix("-"), text.count > 1 {
            throw ConfigurationError("bad duration \"\(text)\": a duration cannot be negative; write 0 or more, e.g. 5s")
        }
        var total = Duration.zero
        var rest = Substring(text)
        guard !rest.isEmpty else { throw bad }
        while !rest.isEmpty {
            let number = rest.prefix(while: { $0.isASCIIDigit || $0 == "." })
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix(while: { $0.isLetter })
            rest = rest.dropFirst(unit.count)
            guard !number.isEmpty, let value = Double(number) else { throw bad }
            let nanoseconds: Double
            switch unit {
            case "us", "µs": nanoseconds = 1e3
            case "ms": nanoseconds = 1e6
            case "s": nanoseconds = 1e9
            case "m", "min": nanoseconds = 60e9
            case "h": nanoseconds = 3600e9
            default: throw bad
            }
            let part = value * nanoseconds
            guard part.isFinite, part <= Double(Self.maximumParsed.totalNanoseconds) else { throw tooLarge }
            total += .nanoseconds(Int64(part.rounded()))
            // The sum too: past Int64 nanoseconds, deadlines computed from it overflow.
            guard total <= Self.maximumParsed else { throw tooLarge }
        }
        self = total
    }

    /// The longest duration `init(parsing:)` takes: 277777h46m40s (10^18 ns,
    /// about 31 years), so that a deadline computed from it cannot overflow.
    public static let maximumParsed = Duration.seconds(1_000_000_000)

    /// Whole nanoseconds, saturating.
    public var totalNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return product + attoseconds / 1_000_000_000
    }

    /// The shortest way to write it back: `1.5s`, `250ms`, `5m`.
    public var shortDescription: String {
        let ns = totalNanoseconds
        if ns == 0 { return "0s" }
        for (unit, size) in [("h", Int64(3600e9)), ("m", Int64(60e9)), ("s", Int64(1e9))] where ns % size == 0 {
            return "\(ns / size)\(unit)"
        }
        if ns >= 1_000_000_000, ns % 100_000_000 == 0 {
            return "\(ns / 1_000_000_000).\(ns % 1_000_000_000 / 100_000_000)s"
        }
        for (unit, size) in [("ms", Int64(1e6)), ("us", Int64(1e3))] where ns % size == 0 {
            return "\(ns / size)\(unit)"
        }
        // Finer than a microsecond: a fraction of one, exact, so that it parses back.
        var fraction = String(ns % 1000)
        fraction = String(repeating: "0", count: 3 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(ns / 1000).\(fraction)us"
    }

    /// Rounded for a log line: `12s`, `1.9s`, `280ms`.
    public var approximateDescription: String {
        let ns = totalNanoseconds
        if ns >= 10_000_000_000 { return "\((ns + 500_000_000) / 1_000_000_000)s" }
        if ns >= 1_000_000_000 {
            let tenths = (ns + 50_000_000) / 100_000_000
            return tenths % 10 == 0 ? "\(tenths / 10)s" : "\(tenths / 10).\(tenths % 10)s"
        }
        return "\((ns + 500_000) / 1_000_000)ms"
    }
}

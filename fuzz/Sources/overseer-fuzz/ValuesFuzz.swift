import OverseerCore

/// The one-word flag values: durations, readiness, signals, sizes, --fetch and --check.
/// Every parser gets the same text.
func fuzzValues(_ bytes: UnsafeRawBufferPointer) {
    let input = text(bytes)

    if let duration = try? Duration(parsing: input) {
        let ns = duration.totalNanoseconds
        require(duration >= .zero, "negative duration from \(input.debugDescription)")
        require(duration == .nanoseconds(ns), "\(input.debugDescription) is not whole nanoseconds or saturated: \(duration)")
        let short = duration.shortDescription
        let again = try? Duration(parsing: short)
        // The parser goes through Double: exact up to ~11 days, then within a part in 10^15.
        let tolerance = ns < 1_000_000_000_000_000 ? 0 : ns / 1_000_000_000_000_000 + 1
        require(again.map { abs($0.totalNanoseconds - ns) <= tolerance } ?? false,
                "Duration \(input.debugDescription) = \(ns)ns -> \(short.debugDescription) -> \(again.map { "\($0.totalNanoseconds)ns" } ?? "error")")
        _ = duration.approximateDescription
    }

    if let mode = try? ReadinessMode(parsing: input) {
        let again = try? ReadinessMode(parsing: mode.description)
        if case let .delay(duration) = mode, duration.totalNanoseconds >= 1_000_000_000_000_000 {
            require(again != nil, "ReadinessMode \(input.debugDescription) -> \(mode.description.debugDescription) does not parse")
        } else {
            require(again == mode, "ReadinessMode \(input.debugDescription) -> \(mode.description.debugDescription) -> \(String(describing: again))")
        }
    }

    if let signal = try? SignalNumber.parse(input) {
        require((1 ... 64).contains(signal), "signal \(signal) from \(input.debugDescription)")
        let name = SignalNumber.name(signal)
        require((try? SignalNumber.parse(name)) == signal, "signal \(input.debugDescription) -> \(signal) -> \(name) does not parse back")
    }

    if let size = try? ByteSize.parse(input) {
        require(size > 0, "size \(size) from \(input.debugDescription)")
        if input.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            require(String(size) == input.drop(while: { $0 == "0" }), "size \(input.debugDescription) -> \(size)")
        }
    }

    if let source = try? UpgradeSettings.Source(parsing: input) {
        let again = try? UpgradeSettings.Source(parsing: source.description)
        switch source {
        case let .file(path):
            require(!path.isEmpty, "empty --fetch path from \(input.debugDescription)")
            // description writes file://PATH, which takes only an absolute path: a relative
            // path is shown, not meant to be parsed again.
            if path.hasPrefix("/") {
                require(again == source, "--fetch \(input.debugDescription) -> \(source.description.debugDescription) -> \(String(describing: again))")
            }
        case let .network(url):
            require(url == input && again == source, "--fetch \(input.debugDescription) -> \(String(describing: again))")
        }
    }

    if let check = try? UpgradeSettings.Check(parsing: input) {
        let again = try? UpgradeSettings.Check(parsing: check.description)
        require(again == check, "--check \(input.debugDescription) -> \(check.description.debugDescription) -> \(String(describing: again))")
    }
}

/// The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE`
/// lines, then one sample a line. Label values are escaped as the format
/// requires (`\\`, `\"`, `\n`); other control characters become U+FFFD, and a
/// value is cut at `maximumLabelLength` bytes, since some (a release's
/// version) come from outside overseerd.
/// See https://prometheus.io/docs/instrumenting/exposition_formats/.
public struct MetricsText: Sendable {
    /// The `Content-Type` of this format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    /// The longest label value kept, in UTF-8 bytes (longer ones are cut, with `…`).
    public static let maximumLabelLength = 128

    public enum Kind: String, Sendable { case counter, gauge, histogram }

    /// The text so far.
    public private(set) var text = ""

    public init() {}

    /// `# HELP` and `# TYPE` of a family; its samples follow. `help` is overseerd's
    /// own text, one line without backslashes.
    public mutating func family(_ name: String, _ kind: Kind, help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
    }

    /// One sample line of a family begun with `family`.
    public mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        sample(name, labels, Self.format(value))
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)], _ value: UInt64) {
        sample(name, labels, String(value))
    }

    private mutating func sample(_ name: String, _ labels: [(String, String)], _ value: String) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\"\(Self.escapeLabelValue($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " \(value)\n"
    }

    /// A whole single-sample counter or gauge family.
    public mutating func single(_ name: String, _ kind: Kind, help: String, _ value: Double) {
        family(name, kind, help: help)
        sample(name, [], value)
    }

    /// A whole histogram family: `_bucket{le=…}` for each bound and `+Inf`, `_sum`, `_count`.
    public mutating func histogram(_ name: String, help: String, _ histogram: Histogram) {
        family(name, .histogram, help: help)
        for (index, bound) in histogram.bounds.enumerated() {
            sample(name + "_bucket", [("le", Self.format(bound))], histogram.cumulativeCounts[index])
        }
        sample(name + "_bucket", [("le", "+Inf")], histogram.count)
        sample(name + "_sum", [], histogram.sum)
        sample(name + "_count", [], histogram.count)
    }

    /// A number as the format writes it: integers without a fraction, `+Inf`, `-Inf`, `NaN`.
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// A label value escaped and cut to `maximumLabelLength` bytes (on a scalar boundary).
    public static func escapeLabelValue(_ value: String) -> String {
        var out = ""
        var length = 0
        for scalar in value.unicodeScalars {
            let piece: String = switch scalar {
            case "\\": "\\\\"
            case "\"": "\\\""
            case "\n": "\\n"
            default: scalar.value < 0x20 || scalar.value == 0x7F ? "\u{FFFD}" : String(scalar)
            }
            if length + piece.utf8.count > maximumLabelLength {
                out += "…"
                break
            }
            out += piece
            length += piece.utf8.count
        }
        return out
    }
}

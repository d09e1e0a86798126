/// What `overseerd-fetch` says about one poll: a single line of JSON on its
/// stdout, a flat object of string and integer values.
///
/// ```
/// {"result":"downloaded","bytes":7340032,"sha256":"…","etag":"\"abc\"","url":"https://…"}
/// {"result":"not-modified","etag":"\"abc\""}
/// {"result":"error","kind":"http","status":500,"message":"GET https://… answered 500"}
/// ```
public struct FetchReport: Equatable, Sendable {
    public enum Result: String, Sendable {
        /// A new body is in the output file.
        case downloaded
        /// The server said 304 (or the GitHub release is unchanged): nothing was written.
        case notModified = "not-modified"
        /// Nothing usable was written; `message` says why.
        case error
    }

    /// Exit codes of overseerd-fetch.
    public enum ExitCode {
        /// Downloaded or not modified: see `result`.
        public static let success: Int32 = 0
        /// The fetch failed: see `message`.
        public static let failed: Int32 = 1
        /// Bad arguments.
        public static let usage: Int32 = 64
    }

    public var result: Result
    /// Every field as written, including `result`.
    public var fields: [String: JSONValue]

    public init(result: Result, fields: [String: JSONValue] = [:]) {
        self.result = result
        self.fields = fields
        self.fields["result"] = .string(result.rawValue)
    }

    public var bytes: Int64? { fields["bytes"]?.integer }
    public var sha256: String? { fields["sha256"]?.string }
    public var etag: String? { fields["etag"]?.string }
    public var lastModified: String? { fields["last_modified"]?.string }
    public var url: String? { fields["url"]?.string }
    public var message: String? { fields["message"]?.string }
    /// `http`, `size`, `timeout`, `network`, `tls`, `io`, `usage`, `format`.
    public var kind: String? { fields["kind"]?.string }
    public var status: Int64? { fields["status"]?.integer }

    /// The content of a small file fetched beside the binary (`.sha256`, `.minisig`).
    public func sidecar(_ suffix: String) -> String? { fields["sidecar:" + suffix]?.string }

    /// One line of JSON, keys sorted.
    public var encoded: String {
        "{" + fields.keys.sorted().map { key in
            JSONValue.quote(key) + ":" + fields[key]!.encoded
        }.joined(separator: ",") + "}"
    }

    /// Parses a report line. Anything but a flat object with a known `result` is an error.
    public init(parsing line: String) throws(ProtocolError) {
        let parsed = try JSONValue.parseFlatObject(line)
        guard let resultText = parsed["result"]?.string, let result = Result(rawValue: resultText) else {
            throw ProtocolError("fetch report without a known \"result\": \(line.prefix(200))")
        }
        self.result = result
        self.fields = parsed
    }
}

/// A JSON string or integer: all a fetch report holds.
public enum JSONValue: Equatable, Sendable {
    case string(String)
    case integer(Int64)

    public var string: String? { if case let .string(value) = self { value } else { nil } }
    public var integer: Int64? { if case let .integer(value) = self { value } else { nil } }

    var encoded: String {
        switch self {
        case let .string(value): JSONValue.quote(value)
        case let .integer(value): String(value)
        }
    }

    static func quote(_ text: String) -> String {
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return "\"" + text + "\""
        }
        // Byte by byte: every byte that needs escaping is ASCII, and the others
        // (UTF-8 of what is above U+007F included) are copied as they are.
        var out: [UInt8] = [UInt8(ascii: "\"")]
        out.reserveCapacity(text.utf8.count + 2)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x00 ..< 0x20:
                let digits = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses `{"key": "value" | integer, ...}`; nested values are rejected.
    static func parseFlatObject(_ text: String) throws(ProtocolError) -> [String: JSONValue] {
        var parser = FlatJSONParser(Array(text.utf8))
        return try parser.object()
    }
}

private struct FlatJSONParser {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func fail(_ what: String) -> ProtocolError {
        ProtocolError("bad fetch report at byte \(index): \(what)")
    }

    mutating func skipSpace() {
        while index < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[index]) { index += 1 }
    }

    mutating func expect(_ byte: UInt8) throws(ProtocolError) {
        skipSpace()
        guard index < bytes.count, bytes[index] == byte else { throw fail("expected '\(Character(Unicode.Scalar(byte)))'") }
        index += 1
    }

    mutating func object() throws(ProtocolError) -> [String: JSONValue] {
        try expect(UInt8(ascii: "{"))
        var result: [String: JSONValue] = [:]
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
        } else {
            while true {
                skipSpace()
                let key = try string()
                try expect(UInt8(ascii: ":"))
                skipSpace()
                guard index < bytes.count else { throw fail("value missing") }
                if bytes[index] == UInt8(ascii: "\"") {
                    result[key] = .string(try string())
                } else {
                    result[key] = .integer(try integer())
                }
                skipSpace()
                guard index < bytes.count else { throw fail("object not closed") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; break }
                throw fail("expected ',' or '}'")
            }
        }
        skipSpace()
        guard index == bytes.count else { throw fail("text after the object") }
        return result
    }

    mutating func integer() throws(ProtocolError) -> Int64 {
        let start = index
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
        guard index > start, let value = Int64(String(decoding: bytes[start ..< index], as: UTF8.self)) else {
            throw fail("expected a string or an integer")
        }
        return value
    }

    mutating func string() throws(ProtocolError) -> String {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a string") }
        index += 1
        var scalars = String.UnicodeScalarView()
        var raw: [UInt8] = []
        func flush() {
            scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
            raw.removeAll()
        }
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                flush()
                return String(scalars)
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw fail("escape at the end") }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""): raw.append(0x22)
                case UInt8(ascii: "\\"): raw.append(0x5c)
                case UInt8(ascii: "/"): raw.append(0x2f)
                case UInt8(ascii: "n"): raw.append(0x0a)
                case UInt8(ascii: "r"): raw.append(0x0d)
                case UInt8(ascii: "t"): raw.append(0x09)
                case UInt8(ascii: "b"): raw.append(0x08)
                case UInt8(ascii: "f"): raw.append(0x0c)
                case UInt8(ascii: "u"):
                    guard index + 4 <= bytes.count,
                          let code = UInt32(String(decoding: bytes[index ..< index + 4], as: UTF8.self), radix: 16) else {
                        throw fail("bad \\u escape")
                    }
                    index += 4
                    flush()
                    // Surrogate pairs are not needed for what overseerd-fetch writes; replace them.
                    scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                default: throw fail("unknown escape")
                }
            case 0x00 ..< 0x20:
                throw fail("control character in a string")
            default:
                raw.append(byte)
            }
        }
        throw fail("string not closed")
    }
}

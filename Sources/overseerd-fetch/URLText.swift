/// Small operations on URL text, without a URL type.
enum URLText {
    /// `url` with `suffix` appended to its path, before any `?query` or `#fragment`.
    static func appendingToPath(_ url: String, _ suffix: String) -> String {
        guard let split = url.firstIndex(where: { $0 == "?" || $0 == "#" }) else { return url + suffix }
        return String(url[..<split]) + suffix + String(url[split...])
    }

    /// The path of `url` ends in `.gz` (case-insensitive), ignoring any query or fragment.
    static func pathEndsInGz(_ url: String) -> Bool {
        let path = url.prefix(while: { $0 != "?" && $0 != "#" })
        return path.lowercased().hasSuffix(".gz")
    }

    /// `text` with every byte but the unreserved characters (RFC 3986) and `/` percent-encoded,
    /// as an S3 object key must be in the request path.
    static func encodingPath(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A") ... UInt8(ascii: "Z"), UInt8(ascii: "a") ... UInt8(ascii: "z"),
                 UInt8(ascii: "0") ... UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0f)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `url` without trailing slashes.
    static func trimmingSlashes(_ url: String) -> String {
        var text = url
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }
}

/// The little HTTP/1.1 that `--metrics-listen` speaks: one request head read,
/// one answer, the connection closed (RFC 9112). Pure: the bytes come from
/// the caller.
public enum MetricsHTTP {
    /// The longest request head taken (request line and headers).
    public static let maximumHeadLength = 8192
    /// The path served.
    public static let metricsPath = "/metrics"
    /// The probe paths: both give the same judgement (`overseerd health`'s), 200 or 503.
    public static let healthPaths = ["/healthz", "/readyz"]

    /// What a request head read so far amounts to.
    public enum Verdict: Equatable, Sendable {
        /// No blank line yet, and still within `maximumHeadLength`.
        case incomplete
        /// A complete head asking for the metrics.
        case metrics(headOnly: Bool)
        /// A complete head asking whether the service is up (`/healthz`, `/readyz`).
        case health(headOnly: Bool)
        /// A complete head, or one too long or malformed: answer with this status and close.
        case refuse(status: Int, reason: String)
    }

    /// Judges the bytes received so far on a connection.
    public static func judge(_ received: [UInt8]) -> Verdict {
        // RFC 9112 section 2.2: a server SHOULD ignore at least one empty line
        // received before the request line (some clients send a CRLF after a POST body).
        let bytes = received[leadingEmptyLinesEnd(received)...]
        guard let end = headEnd(bytes) else {
            return received.count >= maximumHeadLength ? .refuse(status: 431, reason: "Request Header Fields Too Large") : .incomplete
        }
        guard end <= maximumHeadLength else { return .refuse(status: 431, reason: "Request Header Fields Too Large") }
        let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\n")) ?? end
        let line = bytes[..<lineEnd].last == UInt8(ascii: "\r") ? bytes[bytes.startIndex..<(lineEnd - 1)] : bytes[bytes.startIndex..<lineEnd]
        let words = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard words.count == 3, words.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 > 0x20 && $0 < 0x7F } }),
              words[2].elementsEqual("HTTP/1.1".utf8) || words[2].elementsEqual("HTTP/1.0".utf8) else {
            return .refuse(status: 400, reason: "Bad Request")
        }
        var target = originForm(words[1])
        if let query = target.firstIndex(of: UInt8(ascii: "?")) { target = target[..<query] }
        let isHealth = healthPaths.contains { target.elementsEqual($0.utf8) }
        guard isHealth || target.elementsEqual(metricsPath.utf8) else { return .refuse(status: 404, reason: "Not Found") }
        let headOnly: Bool
        if words[0].elementsEqual("GET".utf8) {
            headOnly = false
        } else if words[0].elementsEqual("HEAD".utf8) {
            headOnly = true
        } else {
            return .refuse(status: 405, reason: "Method Not Allowed")
        }
        return isHealth ? .health(headOnly: headOnly) : .metrics(headOnly: headOnly)
    }

    /// The whole answer: status line, headers, body.
    public static func response(status: Int, reason: String, contentType: String, body: String, headOnly: Bool = false) -> [UInt8] {
        let bodyBytes = Array(body.utf8)
        var head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(bodyBytes.count)\r\nConnection: close\r\n"
        if status == 405 { head += "Allow: GET, HEAD\r\n" }
        head += "\r\n"
        return Array(head.utf8) + (headOnly ? [] : bodyBytes)
    }

    /// The index just past the blank line ending the head (`\r\n\r\n`, or a bare `\n\n`).
    static func headEnd(_ bytes: ArraySlice<UInt8>) -> Int? {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if bytes[index] == UInt8(ascii: "\n") {
                if index + 1 < bytes.endIndex, bytes[index + 1] == UInt8(ascii: "\n") { return index + 2 }
                if index + 2 < bytes.endIndex, bytes[index + 1] == UInt8(ascii: "\r"), bytes[index + 2] == UInt8(ascii: "\n") { return index + 3 }
            }
            index += 1
        }
        return nil
    }

    /// The index just past the empty lines (`\r\n` or `\n`) a request may start with.
    static func leadingEmptyLinesEnd(_ bytes: [UInt8]) -> Int {
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "\r"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") {
                index += 2
            } else {
                break
            }
        }
        return index
    }

    /// The path of a request target: itself in origin form (`/metrics`); in
    /// absolute form (`http://host:port/metrics`, RFC 9112 section 3.2.2, which a
    /// server MUST accept) the part from the first `/` after the authority, or `/`.
    static func originForm(_ target: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        guard target.first != UInt8(ascii: "/") else { return target }
        let lowered = target.prefix(8).map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }
        let schemeLength: Int
        if lowered.starts(with: "http://".utf8) { schemeLength = 7 }
        else if lowered.starts(with: "https://".utf8) { schemeLength = 8 }
        else { return target }
        let authority = target.dropFirst(schemeLength)
        let slash = UInt8(ascii: "/")
        guard let start = authority.firstIndex(where: { $0 == slash || $0 == UInt8(ascii: "?") }) else { return [slash] }
        return authority[start] == slash ? authority[start...] : ArraySlice([slash] + authority[start...])
    }
}

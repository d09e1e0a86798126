/// What overseerd-fetch needs from one HTTP response's header block.
///
/// libcurl hands over every header line of every response (redirects, 100 Continue,
/// the final one), so a status line starts a new block.
struct ResponseHeaders: Equatable {
    var status = 0
    var reason = ""
    var etag: String?
    var lastModified: String?
    var contentEncoding: String?
    var contentLength: Int64?
    /// The blank line that ends the block has been seen.
    var complete = false

    /// Takes one header line as libcurl delivers it (with its CRLF).
    mutating func take(_ line: Substring) {
        var text = line
        // "\r\n" is one Character: test for any line break.
        while let last = text.last, last.isNewline { text.removeLast() }
        if text.hasPrefix("HTTP/") {
            self = ResponseHeaders()
            let parts = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            if parts.count >= 2, let code = Int(parts[1]) { status = code }
            if parts.count == 3 { reason = String(parts[2]) }
            return
        }
        if text.isEmpty {
            complete = true
            return
        }
        guard let colon = text.firstIndex(of: ":") else { return }
        let name = text[..<colon].lowercased()
        let value = String(text[text.index(after: colon)...].drop(while: { $0 == " " || $0 == "\t" })
            .reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
        switch name {
        case "etag": etag = value
        case "last-modified": lastModified = value
        case "content-encoding": contentEncoding = value.isEmpty || value.lowercased() == "identity" ? nil : value
        case "content-length": contentLength = Int64(value)
        default: break
        }
    }

    /// `200 OK`, or only the number when the server sent no reason (HTTP/2).
    var statusText: String { reason.isEmpty ? String(status) : "\(status) \(reason)" }
}

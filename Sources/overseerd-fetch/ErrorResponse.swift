import OverseerProtocol

/// An HTTP response with status 400 or more, turned into a message a person can act on.
struct ErrorResponse {
    var request: HTTPRequest
    var headers: ResponseHeaders
    /// The start of the response body.
    var body: [UInt8]

    var failure: FetchFailure {
        var message = "GET \(request.name) answered \(headers.statusText)"
        if let detail = serverDetail { message += ": " + detail }
        if let hint { message += " (" + hint + ")" }
        return FetchFailure(.http, status: headers.status, message)
    }

    private var hint: String? {
        switch headers.status {
        case 401, 403:
            if request.signing != nil || request.url.contains("amazonaws.com") {
                return "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, the region and the bucket policy"
            }
            return "check the credentials and who may read this URL"
        case 404, 410: return "check the URL"
        case 429: return "rate limited: the next poll will try again"
        case 500...: return "a server-side problem: the next poll will try again"
        default: return nil
        }
    }

    /// What the server said, from an S3 XML error (`<Code>`) or a JSON `"message"` (GitHub).
    private var serverDetail: String? {
        let text = String(decoding: body, as: UTF8.self)
        if let code = Self.between("<Code>", "</Code>", in: text) {
            if let message = Self.between("<Message>", "</Message>", in: text) { return code + ": " + message }
            return code
        }
        if case let .object(members)? = try? JSONScanner.parse(body),
           case let .string(message)? = members.first(where: { $0.key == "message" })?.value {
            return String(message.prefix(200))
        }
        return nil
    }

    private static func between(_ open: String, _ close: String, in text: String) -> String? {
        guard let start = text.firstRange(of: open), let end = text[start.upperBound...].firstRange(of: close) else { return nil }
        return String(text[start.upperBound ..< end.lowerBound].prefix(200))
    }
}

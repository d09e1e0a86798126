import OverseerProtocol
import Testing

@Suite struct MetricsHTTPTests {
    private func judge(_ text: String) -> MetricsHTTP.Verdict { MetricsHTTP.judge(Array(text.utf8)) }

    @Test func aGetOfMetricsIsServed() {
        #expect(judge("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == .metrics(headOnly: false))
        #expect(judge("GET /metrics?x=1 HTTP/1.0\r\n\r\n") == .metrics(headOnly: false))
        #expect(judge("HEAD /metrics HTTP/1.1\n\n") == .metrics(headOnly: true))
    }

    @Test func theProbesAreServed() {
        #expect(judge("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == .health(headOnly: false))
        #expect(judge("GET /readyz?verbose HTTP/1.0\r\n\r\n") == .health(headOnly: false))
        #expect(judge("HEAD /readyz HTTP/1.1\n\n") == .health(headOnly: true))
        #expect(judge("POST /healthz HTTP/1.1\r\n\r\n") == .refuse(status: 405, reason: "Method Not Allowed"))
        #expect(judge("GET /healthzz HTTP/1.1\r\n\r\n") == .refuse(status: 404, reason: "Not Found"))
    }

    @Test func aHeadNotYetEndedWaitsUntilItIsTooLong() {
        #expect(judge("GET /metrics HTTP/1.1\r\nHost: x\r\n") == .incomplete)
        #expect(judge("G") == .incomplete)
        let long = "GET /metrics HTTP/1.1\r\nX: " + String(repeating: "a", count: MetricsHTTP.maximumHeadLength)
        #expect(judge(long) == .refuse(status: 431, reason: "Request Header Fields Too Large"))
        #expect(judge(long + "\r\n\r\n") == .refuse(status: 431, reason: "Request Header Fields Too Large"))
    }

    @Test func otherPathsMethodsAndGarbageAreRefused() {
        #expect(judge("GET / HTTP/1.1\r\n\r\n") == .refuse(status: 404, reason: "Not Found"))
        #expect(judge("GET /metricsx HTTP/1.1\r\n\r\n") == .refuse(status: 404, reason: "Not Found"))
        #expect(judge("POST /metrics HTTP/1.1\r\n\r\n") == .refuse(status: 405, reason: "Method Not Allowed"))
        #expect(judge("\u{16}\u{3}\u{1}garbage\r\n\r\n") == .refuse(status: 400, reason: "Bad Request"))
        #expect(judge("GET /metrics\r\n\r\n") == .refuse(status: 400, reason: "Bad Request"))
        #expect(judge("GET  /metrics HTTP/1.1\r\n\r\n") == .refuse(status: 400, reason: "Bad Request"))
        #expect(judge("GET /metrics SPDY/3\r\n\r\n") == .refuse(status: 400, reason: "Bad Request"))
    }

    /// RFC 9112 sections 2.2 and 3.2.2: empty lines before the request line are
    /// ignored, and a target in absolute form names the same resource.
    @Test func leadingEmptyLinesAndAbsoluteFormTargetsAreAccepted() {
        let table: [(String, MetricsHTTP.Verdict)] = [
            ("\r\nGET /metrics HTTP/1.1\r\n\r\n", .metrics(headOnly: false)),
            ("\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n", .metrics(headOnly: false)),
            ("\nHEAD /metrics HTTP/1.1\n\n", .metrics(headOnly: true)),
            ("\r\n", .incomplete),
            ("\r\nGET /metrics HTTP/1.1\r\n", .incomplete),
            ("GET http://127.0.0.1:9100/metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n\r\n", .metrics(headOnly: false)),
            ("GET HTTP://host/metrics?x=1 HTTP/1.1\r\n\r\n", .metrics(headOnly: false)),
            ("GET https://host/metrics HTTP/1.1\r\n\r\n", .metrics(headOnly: false)),
            ("GET http://host HTTP/1.1\r\n\r\n", .refuse(status: 404, reason: "Not Found")),
            ("GET http://host?x HTTP/1.1\r\n\r\n", .refuse(status: 404, reason: "Not Found")),
            ("GET http://host/other/metrics HTTP/1.1\r\n\r\n", .refuse(status: 404, reason: "Not Found")),
            ("GET ftp://host/metrics HTTP/1.1\r\n\r\n", .refuse(status: 404, reason: "Not Found")),
            ("GET metrics HTTP/1.1\r\n\r\n", .refuse(status: 404, reason: "Not Found")),
            ("\r\n GET /metrics HTTP/1.1\r\n\r\n", .refuse(status: 400, reason: "Bad Request")),
        ]
        for (request, verdict) in table {
            #expect(judge(request) == verdict, "\(request.debugDescription)")
        }
        let emptyLines = String(repeating: "\r\n", count: MetricsHTTP.maximumHeadLength / 2)
        #expect(judge(emptyLines) == .refuse(status: 431, reason: "Request Header Fields Too Large"))
    }

    @Test func theAnswerCarriesItsLengthAndClosesTheConnection() {
        let answer = String(decoding: MetricsHTTP.response(status: 200, reason: "OK", contentType: "text/plain", body: "é\n"), as: UTF8.self)
        #expect(answer == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\né\n")
        let head = MetricsHTTP.response(status: 200, reason: "OK", contentType: "text/plain", body: "abc", headOnly: true)
        #expect(String(decoding: head, as: UTF8.self).hasSuffix("Content-Length: 3\r\nConnection: close\r\n\r\n"))
    }
}

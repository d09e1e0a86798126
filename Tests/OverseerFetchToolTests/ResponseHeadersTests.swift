@testable import overseerd_fetch
import Testing

/// Header lines as libcurl hands them over, across redirects.
@Suite struct ResponseHeadersTests {
    @Test func aNewStatusLineStartsOver() {
        var headers = ResponseHeaders()
        for line in ["HTTP/1.1 302 Found\r\n", "ETag: \"old\"\r\n", "Location: /x\r\n", "\r\n",
                     "HTTP/2 200\r\n", "etag:   \"new\"  \r\n", "Content-Length: 12\r\n", "content-encoding: identity\r\n", "\r\n"] {
            headers.take(line[...])
        }
        #expect(headers == ResponseHeaders(status: 200, reason: "", etag: "\"new\"", lastModified: nil,
                                           contentEncoding: nil, contentLength: 12, complete: true))
        #expect(headers.statusText == "200")
    }

    @Test func keepsTheReasonAndEncoding() {
        var headers = ResponseHeaders()
        for line in ["HTTP/1.1 404 Not Found\r\n", "Content-Encoding: gzip\r\n", "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n"] {
            headers.take(line[...])
        }
        #expect(headers.statusText == "404 Not Found")
        #expect(headers.contentEncoding == "gzip")
        #expect(headers.lastModified == "Wed, 21 Oct 2015 07:28:00 GMT")
        #expect(!headers.complete)
    }
}

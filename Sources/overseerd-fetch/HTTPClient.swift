import CCurl
import COverseerFetchShims

/// Makes GET requests with libcurl under the limits of the command line.
final class HTTPClient {
    /// How a GET ended, when it did not fail.
    enum Outcome {
        /// A 2xx response whose body went to the sink; `url` is the final URL after redirects.
        case completed(ResponseHeaders, url: String)
        /// 304: the conditions matched.
        case notModified(ResponseHeaders)
    }

    private let handle: CurlHandle
    private let limits: FetchOptions

    init(limits: FetchOptions) throws(FetchFailure) {
        handle = try CurlHandle()
        self.limits = limits
    }

    /// GETs `request`, giving a 2xx body to `sink`. An error status (≥ 400) never reaches the sink.
    func get(_ request: HTTPRequest, into sink: BodySink) throws(FetchFailure) -> Outcome {
        let state = TransferState(sink: sink)
        try configure(request, state: state)
        let code = withExtendedLifetime(state) { handle.perform() }
        let headers = state.headers
        if let failure = state.failure { throw Self.rememberingOversize(failure, headers) }
        if headers.status >= 400 {
            throw ErrorResponse(request: request, headers: headers, body: state.errorBody).failure
        }
        guard code == CURLE_OK else { throw Self.rememberingOversize(failure(for: code, request: request, headers: headers), headers) }
        if headers.status == 304 { return .notModified(headers) }
        guard state.isSuccessStatus else {
            throw FetchFailure(.http, status: headers.status,
                               "GET \(request.name) answered \(headers.statusText), which is not a usable response")
        }
        if !state.began { try sink.begin(headers) }
        try sink.finish()
        return .completed(headers, url: handle.effectiveURL ?? request.url)
    }

    /// A body over --max-size carries the response's validators: the same body
    /// is then asked for conditionally next time, and not downloaded again.
    static func rememberingOversize(_ failure: FetchFailure, _ headers: ResponseHeaders) -> FetchFailure {
        guard failure.kind == .size, (200 ..< 300).contains(headers.status) else { return failure }
        var failure = failure
        failure.etag = headers.etag
        failure.lastModified = headers.lastModified
        return failure
    }

    private func configure(_ request: HTTPRequest, state: TransferState) throws(FetchFailure) {
        try handle.reset()
        try handle.set(CURLOPT_URL, request.url)
        try handle.set(CURLOPT_PROTOCOLS_STR, "http,https")
        try handle.set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        try handle.set(CURLOPT_FOLLOWLOCATION, 1)
        try handle.set(CURLOPT_MAXREDIRS, limits.maxRedirects)
        try handle.set(CURLOPT_CONNECTTIMEOUT_MS, limits.connectTimeoutMilliseconds)
        try handle.set(CURLOPT_LOW_SPEED_LIMIT, 1)
        try handle.set(CURLOPT_LOW_SPEED_TIME, limits.lowSpeedTimeSeconds)
        try handle.set(CURLOPT_TIMEOUT_MS, limits.maxTimeMilliseconds)
        // "" asks for every encoding libcurl can decode and decodes the body.
        try handle.set(CURLOPT_ACCEPT_ENCODING, "")
        try handle.set(CURLOPT_USERAGENT, "overseerd-fetch")
        // No signals from libcurl (SIGPIPE is ignored by main; name resolution is threaded).
        try handle.set(CURLOPT_NOSIGNAL, 1)
        // A proxy's CONNECT answer is not the server's response.
        try handle.set(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1)
        try handle.set(CURLOPT_BUFFERSIZE, 128 * 1024)
        if !request.headers.isEmpty { try handle.setHeaders(request.headers) }
        if let signing = request.signing {
            try handle.set(CURLOPT_AWS_SIGV4, signing.curlParameter)
            try handle.set(CURLOPT_USERPWD, signing.accessKeyID + ":" + signing.secretAccessKey)
        }
        let context = Unmanaged.passUnretained(state).toOpaque()
        try handle.set(CURLOPT_HEADERDATA, pointer: context)
        try handle.set(CURLOPT_HEADERFUNCTION, callback: { data, size, count, context in
            let state = Unmanaged<TransferState>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
            return state.takeHeader(line[...]) ? length : 0
        })
        try handle.set(CURLOPT_WRITEDATA, pointer: context)
        try handle.set(CURLOPT_WRITEFUNCTION, callback: { data, size, count, context in
            let state = Unmanaged<TransferState>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            return state.takeBody(UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
        })
    }

    private func failure(for code: CURLcode, request: HTTPRequest, headers: ResponseHeaders) -> FetchFailure {
        let detail = handle.describe(code)
        let status = headers.status == 0 ? nil : headers.status
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return FetchFailure(.timeout, status: status, "GET \(request.name) timed out: \(detail) "
                + "(is the server reachable and sending? see --connect-timeout, --low-speed-time, --max-time)")
        case CURLE_TOO_MANY_REDIRECTS:
            return FetchFailure(.http, status: status, "GET \(request.name) redirected more than "
                + "\(limits.maxRedirects) times (a redirect loop?): \(detail)")
        case CURLE_PARTIAL_FILE:
            return FetchFailure(.network, status: status, "GET \(request.name): the body was cut short: \(detail)")
        case CURLE_BAD_CONTENT_ENCODING:
            return FetchFailure(.format, status: status, "GET \(request.name): the server's Content-Encoding "
                + "could not be decoded: \(detail)")
        case CURLE_FILESIZE_EXCEEDED:
            return FetchFailure(.size, status: status, "GET \(request.name): \(detail) (see --max-size)")
        case CURLE_WRITE_ERROR:
            return FetchFailure(.io, status: status, "GET \(request.name): \(detail)")
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND,
             CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_SHUTDOWN_FAILED,
             CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
             CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CLIENTCERT, CURLE_USE_SSL_FAILED:
            return FetchFailure(.tls, status: status, "GET \(request.name): TLS failed: \(detail) "
                + "(check the server's certificate and this host's CA certificates)")
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return FetchFailure(status == nil ? .usage : .http, status: status,
                                "GET \(request.name): \(detail)")
        default:
            return FetchFailure(.network, status: status, "GET \(request.name) failed: \(detail) "
                + "(check the URL, the network and any proxy variables)")
        }
    }
}

import CCurl
import COverseerFetchShims

/// One libcurl easy handle, reused for every request of a run so that connections are kept.
final class CurlHandle {
    private let raw: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    /// libcurl writes its detailed message for the last failure here (CURLOPT_ERRORBUFFER).
    private let errorBuffer: UnsafeMutablePointer<CChar>

    init() throws(FetchFailure) {
        guard curl_global_init(3 /* CURL_GLOBAL_ALL */) == CURLE_OK, let raw = curl_easy_init() else {
            throw FetchFailure(.io, "overseerd-fetch: cannot initialise libcurl (out of memory?)")
        }
        self.raw = raw
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        curl_easy_cleanup(raw)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    /// Clears every option (keeping open connections and caches) and sets the error buffer again.
    func reset() throws(FetchFailure) {
        curl_easy_reset(raw)
        curl_slist_free_all(headerList)
        headerList = nil
        errorBuffer[0] = 0
        try check(ofs_setopt_pointer(raw, CURLOPT_ERRORBUFFER, errorBuffer), CURLOPT_ERRORBUFFER)
    }

    func set(_ option: CURLoption, _ value: Int) throws(FetchFailure) {
        try check(ofs_setopt_long(raw, option, value), option)
    }

    func set(_ option: CURLoption, offset value: Int64) throws(FetchFailure) {
        try check(ofs_setopt_off_t(raw, option, curl_off_t(value)), option)
    }

    /// libcurl copies string options, so a temporary C string is enough.
    func set(_ option: CURLoption, _ value: String) throws(FetchFailure) {
        try check(ofs_setopt_string(raw, option, value), option)
    }

    func set(_ option: CURLoption, pointer value: UnsafeMutableRawPointer?) throws(FetchFailure) {
        try check(ofs_setopt_pointer(raw, option, value), option)
    }

    func set(_ option: CURLoption, callback: ofs_data_callback) throws(FetchFailure) {
        try check(ofs_setopt_data_callback(raw, option, callback), option)
    }

    /// Sets CURLOPT_HTTPHEADER; the list lives until the next `reset`.
    func setHeaders(_ lines: [String]) throws(FetchFailure) {
        for line in lines {
            guard let appended = curl_slist_append(headerList, line) else {
                throw FetchFailure(.io, "overseerd-fetch: out of memory building request headers")
            }
            headerList = appended
        }
        try check(ofs_setopt_slist(raw, CURLOPT_HTTPHEADER, headerList), CURLOPT_HTTPHEADER)
    }

    /// Runs the transfer to its end; the callbacks see the data meanwhile.
    func perform() -> CURLcode { curl_easy_perform(raw) }

    /// libcurl's own words for the last failure: the error buffer, else the code's text.
    func describe(_ code: CURLcode) -> String {
        if errorBuffer[0] != 0 {
            var text = String(cString: errorBuffer)
            while text.last == "\n" || text.last == " " { text.removeLast() }
            if !text.isEmpty { return text }
        }
        return String(cString: curl_easy_strerror(code))
    }

    /// The URL of the last request made, after redirects.
    var effectiveURL: String? {
        var pointer: UnsafePointer<CChar>?
        guard ofs_getinfo_string(raw, CURLINFO_EFFECTIVE_URL, &pointer) == CURLE_OK, let pointer else { return nil }
        return String(cString: pointer)
    }

    private func check(_ code: CURLcode, _ option: CURLoption) throws(FetchFailure) {
        guard code == CURLE_OK else {
            throw FetchFailure(.io, "overseerd-fetch: libcurl rejected option \(option.rawValue): "
                + String(cString: curl_easy_strerror(code)) + " (libcurl 7.85 or newer is needed)")
        }
    }
}

/// What the libcurl callbacks of one transfer share: passed to them as an opaque pointer.
final class TransferState {
    let sink: BodySink
    var headers = ResponseHeaders()
    /// The sink refused the body (too big, cannot write, bad gzip): the transfer was aborted for this.
    var failure: FetchFailure?
    /// The sink was told the final response began.
    var began = false
    /// The start of a body sent with an error status, kept for the message; never given to the sink.
    var errorBody: [UInt8] = []
    private var discarded = 0

    init(sink: BodySink) { self.sink = sink }

    var isSuccessStatus: Bool { (200 ..< 300).contains(headers.status) }

    /// A header line arrived; returns false to abort the transfer.
    func takeHeader(_ line: Substring) -> Bool {
        headers.take(line)
        if headers.status != 0, !headers.complete { began = false }
        guard headers.complete, isSuccessStatus, !began else { return true }
        began = true
        do {
            try sink.begin(headers)
            return true
        } catch {
            failure = error
            return false
        }
    }

    /// Body bytes arrived; returns false to abort the transfer.
    func takeBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard isSuccessStatus else {
            // An error response (or a final 1xx/3xx): keep the start for the message, write nothing.
            if errorBody.count < 4096 { errorBody.append(contentsOf: bytes.prefix(4096 - errorBody.count)) }
            discarded += bytes.count
            return discarded <= 1 << 20
        }
        do {
            if !began {
                began = true
                try sink.begin(headers)
            }
            try sink.write(bytes)
            return true
        } catch {
            failure = error
            return false
        }
    }
}

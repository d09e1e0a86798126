/// Keeps a small body (a sidecar, the release JSON) in memory, up to `limit` bytes.
final class MemoryBodySink: BodySink {
    private let limit: Int
    private let tooBig: (Int64?) -> FetchFailure
    private(set) var bytes: [UInt8] = []

    /// `tooBig` makes the failure for a body over the limit, given the announced length if known.
    init(limit: Int, tooBig: @escaping (Int64?) -> FetchFailure) {
        self.limit = limit
        self.tooBig = tooBig
    }

    func begin(_ headers: ResponseHeaders) throws(FetchFailure) {
        bytes.removeAll()
        if headers.contentEncoding == nil, let length = headers.contentLength, length > limit {
            throw tooBig(length)
        }
    }

    func write(_ chunk: UnsafeRawBufferPointer) throws(FetchFailure) {
        guard chunk.count <= limit - bytes.count else { throw tooBig(nil) }
        bytes.append(contentsOf: chunk)
    }

    func finish() throws(FetchFailure) {}

    /// The body as text; invalid UTF-8 is replaced.
    var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// Streams the binary into the output fd while hashing and counting it, inflating a `.gz`
/// body on the way, and stops once more than `maxSize` bytes would be written.
final class FileBodySink: BodySink {
    private enum Mode {
        /// Bytes go to the file as they are.
        case raw
        /// Bytes are gzip data to inflate.
        case inflate(GzipInflater)
        /// A `.gz` URL whose response also carried Content-Encoding (Apache's `AddEncoding`
        /// does this): libcurl already decoded it, so look at the first bytes to tell
        /// whether a gzip layer is left.
        case sniffing([UInt8])
    }

    private let output: OutputDescriptor
    private let maxSize: Int64
    private let inflatesGzipPath: Bool
    private let name: String
    private var mode = Mode.raw
    private var hasher = SHA256Hasher()
    /// Bytes written to the output so far (after inflating).
    private(set) var written: Int64 = 0

    /// `name` is the URL as the messages should show it; `inflatesGzipPath` says the URL path ends in `.gz`.
    init(output: OutputDescriptor, maxSize: Int64, inflatesGzipPath: Bool, name: String) {
        self.output = output
        self.maxSize = maxSize
        self.inflatesGzipPath = inflatesGzipPath
        self.name = name
    }

    func begin(_ headers: ResponseHeaders) throws(FetchFailure) {
        if inflatesGzipPath {
            mode = headers.contentEncoding == nil ? .inflate(try GzipInflater(name: name)) : .sniffing([])
        } else if headers.contentEncoding == nil, let length = headers.contentLength, length > maxSize {
            // Known too big before a byte is written.
            throw tooBig(announced: length)
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(FetchFailure) {
        switch mode {
        case .raw:
            try emit(bytes)
        case let .inflate(inflater):
            try inflater.feed(bytes, emit)
        case var .sniffing(head):
            head.append(contentsOf: bytes)
            guard head.count >= 2 else {
                mode = .sniffing(head)
                return
            }
            try decide(head)
        }
    }

    func finish() throws(FetchFailure) {
        switch mode {
        case .raw: break
        case let .inflate(inflater): try inflater.finish()
        case let .sniffing(head):
            // Fewer than two bytes in all: cannot be gzip data.
            try decide(head)
        }
        try output.truncate(to: written)
    }

    /// The hex SHA-256 of what was written; call once, after `finish`.
    func digest() -> String { hasher.finalize() }

    private func decide(_ head: [UInt8]) throws(FetchFailure) {
        if head.count >= 2, head[0] == 0x1f, head[1] == 0x8b {
            let inflater = try GzipInflater(name: name)
            mode = .inflate(inflater)
            try Self.withBytes(head) { (buffer) throws(FetchFailure) in try inflater.feed(buffer, emit) }
        } else {
            mode = .raw
            try Self.withBytes(head) { (buffer) throws(FetchFailure) in try emit(buffer) }
        }
    }

    /// Array.withUnsafeBytes with the typed error kept.
    private static func withBytes(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(FetchFailure) -> Void) throws(FetchFailure) {
        let failure: FetchFailure? = bytes.withUnsafeBytes { buffer in
            do throws(FetchFailure) { try body(buffer); return nil } catch { return error }
        }
        if let failure { throw failure }
    }

    private func emit(_ bytes: UnsafeRawBufferPointer) throws(FetchFailure) {
        guard Int64(bytes.count) <= maxSize - written else { throw tooBig(announced: nil) }
        try output.write(bytes, at: written)
        hasher.update(bytes)
        written += Int64(bytes.count)
    }

    private func tooBig(announced: Int64?) -> FetchFailure {
        let what = announced.map { "is \($0) bytes" } ?? "is more than \(maxSize) bytes"
        return FetchFailure(.size, "GET \(name): the body \(what), over --max-size \(maxSize) "
            + "(raise --max-size if the binary really is this large)")
    }
}

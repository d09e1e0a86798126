import CZlib

/// Inflates a gzip stream (a `.gz` download) piece by piece into a fixed 64 KiB buffer,
/// so memory stays flat whatever the size. Several concatenated members are accepted, as
/// gzip(1) does; zero bytes after the last member (padding) are ignored.
final class GzipInflater {
    private var stream = z_stream()
    private let output: UnsafeMutablePointer<UInt8>
    private let outputSize = 64 * 1024
    /// The current member's end was reached.
    private var memberEnded = false
    private var sawInput = false
    private let name: String

    /// `name` is the URL, for messages.
    init(name: String) throws(FetchFailure) {
        self.name = name
        output = .allocate(capacity: outputSize)
        // 16 + MAX_WBITS: expect a gzip header and trailer (zlib.h, inflateInit2).
        let status = inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            output.deallocate()
            throw FetchFailure(.io, "overseerd-fetch: cannot start zlib for \(name) (status \(status))")
        }
    }

    deinit {
        inflateEnd(&stream)
        output.deallocate()
    }

    /// Inflates `input`, handing each piece of output to `emit`.
    func feed(_ input: UnsafeRawBufferPointer,
              _ emit: (UnsafeRawBufferPointer) throws(FetchFailure) -> Void) throws(FetchFailure) {
        guard let base = input.baseAddress, !input.isEmpty else { return }
        var next = base.assumingMemoryBound(to: UInt8.self)
        var available = input.count
        while available > 0 {
            if memberEnded {
                // Between members: skip zero padding; anything else must start a new member.
                if next.pointee == 0 {
                    next += 1
                    available -= 1
                    continue
                }
                inflateReset(&stream)
                memberEnded = false
            }
            sawInput = true
            stream.next_in = UnsafeMutablePointer(mutating: next)
            stream.avail_in = UInt32(min(available, Int(UInt32.max)))
            let given = Int(stream.avail_in)
            var status: Int32
            repeat {
                stream.next_out = output
                stream.avail_out = UInt32(outputSize)
                status = inflate(&stream, Z_NO_FLUSH)
                let produced = outputSize - Int(stream.avail_out)
                if produced > 0 { try emit(UnsafeRawBufferPointer(start: output, count: produced)) }
                guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                    let detail = stream.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                    throw FetchFailure(.format, "\(name) is named .gz but is not valid gzip data: \(detail)")
                }
            } while status == Z_OK && stream.avail_out == 0
            if status == Z_STREAM_END { memberEnded = true }
            let consumed = given - Int(stream.avail_in)
            next += consumed
            available -= consumed
            if consumed == 0 && status != Z_STREAM_END { break }
        }
        stream.next_in = nil
        stream.avail_in = 0
    }

    /// Fails unless the stream ended with a complete gzip member.
    func finish() throws(FetchFailure) {
        guard sawInput else {
            throw FetchFailure(.format, "\(name) is named .gz but its body is empty")
        }
        guard memberEnded else {
            throw FetchFailure(.format, "\(name) is named .gz but its gzip data ends early (truncated upload?)")
        }
    }
}

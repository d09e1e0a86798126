/// Cuts a child's output stream into lines for `--child-output capture`: at
/// each newline (a CR before it dropped), and a line longer than `cap` bytes
/// into pieces of at most `cap` (never inside a UTF-8 sequence), each piece
/// but the last marked `cut`. What the stream leaves without a newline when it
/// ends comes out marked `unterminated`. Holds at most `cap` bytes between calls.
public struct OutputLineSplitter: Sendable {
    /// One line, or one piece of a long line.
    public struct Line: Equatable, Sendable {
        public var bytes: [UInt8]
        /// More of the same line follows in the next piece.
        public var cut: Bool
        /// The stream ended without a newline after it.
        public var unterminated: Bool

        public init(_ bytes: [UInt8], cut: Bool = false, unterminated: Bool = false) {
            self.bytes = bytes
            self.cut = cut
            self.unterminated = unterminated
        }
    }

    /// The longest piece, in bytes.
    public let cap: Int
    private var pending: [UInt8] = []

    public init(cap: Int) {
        precondition(cap >= 4, "a piece must hold a whole UTF-8 sequence")
        self.cap = cap
    }

    /// The lines completed by `bytes`.
    public mutating func feed(_ bytes: [UInt8]) -> [Line] { feed(bytes[...]) }

    /// The lines completed by `bytes` (concrete, not generic: this runs for every byte a child writes).
    public mutating func feed(_ bytes: ArraySlice<UInt8>) -> [Line] {
        var lines: [Line] = []
        var rest = bytes
        while let newline = rest.firstIndex(of: UInt8(ascii: "\n")) {
            take(rest[..<newline], into: &lines)
            if pending.last == UInt8(ascii: "\r") { pending.removeLast() }
            lines.append(Line(pending))
            pending.removeAll(keepingCapacity: true)
            rest = rest[rest.index(after: newline)...]
        }
        take(rest, into: &lines)
        return lines
    }

    /// Adds `part` (no newline in it) to the line being read, cutting pieces off while it is over the cap.
    private mutating func take(_ part: ArraySlice<UInt8>, into lines: inout [Line]) {
        pending.append(contentsOf: part)
        while pending.count > cap { lines.append(cutPiece()) }
    }

    /// What is left when the stream ends (nil when nothing is).
    public mutating func finish() -> Line? {
        guard !pending.isEmpty else { return nil }
        defer { pending.removeAll() }
        return Line(pending, unterminated: true)
    }

    /// The first `cap` bytes or fewer of `pending` (which holds cap + 1), cut
    /// where the next piece starts a character: before a byte that is not a
    /// UTF-8 continuation byte (10xxxxxx), backing off at most 3 bytes.
    private mutating func cutPiece() -> Line {
        func isContinuation(_ index: Int) -> Bool { pending[index] & 0xC0 == 0x80 }
        var end = cap
        while end > cap - 3, end > 1, isContinuation(end) { end -= 1 }
        if isContinuation(end) { end = cap }  // not UTF-8 there: cut anywhere
        let piece = Array(pending[..<end])
        pending.removeFirst(end)
        return Line(piece, cut: true)
    }
}

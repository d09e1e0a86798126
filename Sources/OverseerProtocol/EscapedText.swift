/// Text that came from outside overseerd (a child's `STATUS=`, a notify
/// message, a helper's output, a control request) made safe for one log line.
///
/// Nothing in the result can end the line, move the cursor, change colours or
/// the title of a terminal, or reorder what follows it:
/// - `\n`, `\r`, `\t` are written as such; every other C0 control, DEL and
///   every byte that is not part of valid UTF-8 as `\xNN` (lower-case hex);
/// - C1 controls (U+0080–U+009F), the line and paragraph separators
///   (U+2028, U+2029) and the bidirectional controls (U+061C, U+200E, U+200F,
///   U+202A–U+202E, U+2066–U+2069) as `\u{NNNN}`;
/// - a backslash as `\\`, so that an escape in the result always means an
///   escaped character, never one the sender wrote.
///
/// The result is at most `limit` bytes of UTF-8, followed, when the text was
/// longer, by `…(N bytes more)` (or `…(1 byte more)`) where N counts the bytes of the original not shown.
public enum EscapedText {
    /// The cap of `escape(_:limit:)` when none is given: a log line stays readable.
    public static let defaultLimit = 512

    /// `bytes`, escaped and capped at `limit` bytes of output (see `EscapedText`).
    public static func escape(_ bytes: some Collection<UInt8>, limit: Int = defaultLimit) -> String {
        let input = Array(bytes)
        // Printable ASCII other than the backslash stands for itself: the common case, without the byte-by-byte walk.
        if input.count <= limit, input.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }) {
            return String(decoding: input, as: UTF8.self)
        }
        var output: [UInt8] = []
        output.reserveCapacity(min(input.count, limit) + 16)
        var index = 0
        while index < input.count {
            let (piece, length) = escapedPiece(input, at: index)
            if output.count + piece.count > limit { break }
            output += piece
            index += length
        }
        var text = String(decoding: output, as: UTF8.self)
        if index < input.count {
            let more = input.count - index
            text += "…(\(more) \(more == 1 ? "byte" : "bytes") more)"
        }
        return text
    }

    /// `text`'s UTF-8, escaped and capped (see `EscapedText`).
    public static func escape(_ text: String, limit: Int = defaultLimit) -> String {
        escape(text.utf8, limit: limit)
    }

    /// The output for the character or byte at `index`, and how many input bytes it stands for.
    private static func escapedPiece(_ input: [UInt8], at index: Int) -> ([UInt8], Int) {
        let byte = input[index]
        switch byte {
        case UInt8(ascii: "\n"): return (Array(#"\n"#.utf8), 1)
        case UInt8(ascii: "\r"): return (Array(#"\r"#.utf8), 1)
        case UInt8(ascii: "\t"): return (Array(#"\t"#.utf8), 1)
        case UInt8(ascii: "\\"): return (Array(#"\\"#.utf8), 1)
        case 0x00 ..< 0x20, 0x7f: return (hexEscape(byte), 1)
        case 0x20 ..< 0x7f: return ([byte], 1)
        default: break
        }
        guard let (scalar, length) = decodeScalar(input, at: index) else {
            return (hexEscape(byte), 1)
        }
        if needsEscape(scalar) {
            return (Array("\\u{\(hex(scalar, width: 4))}".utf8), length)
        }
        return (Array(input[index ..< index + length]), length)
    }

    /// The non-ASCII scalars that could break or disguise a line.
    private static func needsEscape(_ scalar: UInt32) -> Bool {
        switch scalar {
        case 0x80 ... 0x9f, 0x2028, 0x2029, 0x061c, 0x200e, 0x200f, 0x202a ... 0x202e, 0x2066 ... 0x2069: true
        default: false
        }
    }

    /// The scalar encoded by a well-formed UTF-8 sequence starting at `index`
    /// (no overlong forms, no surrogates, nothing above U+10FFFF), and its length.
    private static func decodeScalar(_ input: [UInt8], at index: Int) -> (UInt32, Int)? {
        let lead = input[index]
        let length: Int
        var value: UInt32
        var lowest: UInt32
        switch lead {
        case 0xc2 ... 0xdf: (length, value, lowest) = (2, UInt32(lead & 0x1f), 0x80)
        case 0xe0 ... 0xef: (length, value, lowest) = (3, UInt32(lead & 0x0f), 0x800)
        case 0xf0 ... 0xf4: (length, value, lowest) = (4, UInt32(lead & 0x07), 0x10000)
        default: return nil
        }
        guard index + length <= input.count else { return nil }
        for offset in 1 ..< length {
            let next = input[index + offset]
            guard next & 0xc0 == 0x80 else { return nil }
            value = value << 6 | UInt32(next & 0x3f)
        }
        guard value >= lowest, value <= 0x10ffff, !(0xd800 ... 0xdfff).contains(value) else { return nil }
        return (value, length)
    }

    private static func hexEscape(_ byte: UInt8) -> [UInt8] {
        Array("\\x\(hex(UInt32(byte), width: 2))".utf8)
    }

    private static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

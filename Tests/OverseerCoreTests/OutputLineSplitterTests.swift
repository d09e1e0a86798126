import OverseerCore
import Testing

/// A child's output cut into lines: newlines, long lines, a last line without a newline.
@Suite struct OutputLineSplitterTests {
    typealias Line = OutputLineSplitter.Line

    static func split(_ chunks: [String], cap: Int = 8) -> [Line] {
        var splitter = OutputLineSplitter(cap: cap)
        var lines = chunks.flatMap { splitter.feed(Array($0.utf8)) }
        if let last = splitter.finish() { lines.append(last) }
        return lines
    }

    static func line(_ text: String, cut: Bool = false, unterminated: Bool = false) -> Line {
        Line(Array(text.utf8), cut: cut, unterminated: unterminated)
    }

    @Test(arguments: [
        (["a\nb\n"], [line("a"), line("b")]),
        (["a", "b\n", "c"], [line("ab"), line("c", unterminated: true)]),
        (["\n\n"], [line(""), line("")]),
        (["crlf\r\n"], [line("crlf")]),
        (["12345678\n"], [line("12345678")]),
        (["123456789\n"], [line("12345678", cut: true), line("9")]),
        (["1234567", "89abcdefgh", "ij\n"], [line("12345678", cut: true), line("9abcdefg", cut: true), line("hij")]),
        (["1234567890123456"], [line("12345678", cut: true), line("90123456", unterminated: true)]),
        // A two-byte character straddling the cap goes whole into the next piece.
        (["1234567é\n"], [line("1234567", cut: true), line("é")]),
        // A four-byte one.
        (["12345🙂\n"], [line("12345", cut: true), line("🙂")]),
        ([""], []),
    ])
    func linesAreCutAsDocumented(chunks: [String], expected: [Line]) {
        #expect(Self.split(chunks) == expected)
    }

    @Test func bytesThatAreNotUTF8AreCutAtTheCap() {
        var splitter = OutputLineSplitter(cap: 4)
        let lines = splitter.feed([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, UInt8(ascii: "\n")])
        #expect(lines == [Line([0x80, 0x80, 0x80, 0x80], cut: true), Line([0x80, 0x80])])
    }

    @Test func memoryHeldIsBoundedByTheCap() {
        var splitter = OutputLineSplitter(cap: 16)
        let lines = splitter.feed(Array(repeating: UInt8(ascii: "x"), count: 1000))
        #expect(lines.count == 62 && lines.allSatisfy { $0.cut && $0.bytes.count == 16 })
        #expect(splitter.finish() == Line(Array(repeating: UInt8(ascii: "x"), count: 8), unterminated: true))
    }
}

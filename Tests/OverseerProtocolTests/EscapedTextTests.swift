import OverseerProtocol
import Testing

@Suite struct EscapedTextTests {
    @Test(arguments: [
        // Plain text, including non-ASCII letters and emoji, stays as it is.
        ([UInt8]("warming up".utf8), "warming up"),
        ([UInt8]("prêt: 3 workers 🚀".utf8), "prêt: 3 workers 🚀"),
        ([UInt8](), ""),
        // What would end or forge a line.
        ([UInt8]("a\nb".utf8), #"a\nb"#),
        ([UInt8]("a\r\nb".utf8), #"a\r\nb"#),
        ([UInt8]("a\tb".utf8), #"a\tb"#),
        ([UInt8]("ok\noverseerd: generation 9 is ready".utf8), #"ok\noverseerd: generation 9 is ready"#),
        // Terminal controls: ESC (colours, title), BEL, NUL, backspace, DEL.
        ([UInt8]("\u{1b}[31mred\u{1b}[0m".utf8), #"\x1b[31mred\x1b[0m"#),
        ([UInt8]("\u{1b}]0;owned\u{07}".utf8), #"\x1b]0;owned\x07"#),
        ([0x61, 0x00, 0x62], #"a\x00b"#),
        ([0x08, 0x7f], #"\x08\x7f"#),
        // A backslash is doubled, so that `\x1b` in the output never came from the sender as such.
        ([UInt8](#"C:\x1b"#.utf8), #"C:\\x1b"#),
        // C1 controls (CSI U+009B acts as ESC [ on some terminals), NEL, line separators, bidi overrides.
        ([UInt8]("a\u{9b}31mb".utf8), #"a\u{009b}31mb"#),
        ([UInt8]("a\u{85}b".utf8), #"a\u{0085}b"#),
        ([UInt8]("a\u{2028}b\u{2029}c".utf8), #"a\u{2028}b\u{2029}c"#),
        ([UInt8]("\u{202e}gnp.exe".utf8), #"\u{202e}gnp.exe"#),
        ([UInt8]("\u{2066}x\u{2069}".utf8), #"\u{2066}x\u{2069}"#),
        // Invalid UTF-8, byte by byte: a stray continuation, a lone lead, an overlong
        // '/', an encoded surrogate, past U+10FFFF, a sequence cut short at the end.
        ([0x80], #"\x80"#),
        ([0xc3, 0x41], #"\xc3A"#),
        ([0xc0, 0xaf], #"\xc0\xaf"#),
        ([0xed, 0xa0, 0x80], #"\xed\xa0\x80"#),
        ([0xf4, 0x90, 0x80, 0x80], #"\xf4\x90\x80\x80"#),
        ([0xff, 0xfe], #"\xff\xfe"#),
        ([0x61, 0xe2, 0x82], #"a\xe2\x82"#),
    ])
    func escapes(_ input: [UInt8], _ expected: String) {
        #expect(EscapedText.escape(input) == expected)
    }

    @Test func stringInputIsItsUTF8() {
        #expect(EscapedText.escape("line 1\nline 2\u{1b}") == #"line 1\nline 2\x1b"#)
    }

    @Test(arguments: [
        // (input, limit, expected)
        ("abcdef", 6, "abcdef"),
        ("abcdefgh", 6, "abcdef…(2 bytes more)"),
        // An escape is never cut in half: it is either whole within the limit or left out.
        ("abcde\n", 6, "abcde…(1 byte more)"),
        ("abcd\n", 6, #"abcd\n"#),
        // Nor is a character: "é" is two bytes.
        ("abcdeé", 6, "abcde…(2 bytes more)"),
        ("", 0, ""),
        ("x", 0, "…(1 byte more)"),
    ])
    func capsTheOutput(_ input: String, _ limit: Int, _ expected: String) {
        #expect(EscapedText.escape(input, limit: limit) == expected)
    }

    @Test func defaultCapIs512BytesOfOutput() {
        let long = String(repeating: "a", count: 4096)
        #expect(EscapedText.escape(long) == String(repeating: "a", count: 512) + "…(3584 bytes more)")
        // Escapes count as what they take in the line: 4 bytes each for a NUL.
        let zeros = [UInt8](repeating: 0, count: 1000)
        #expect(EscapedText.escape(zeros) == String(repeating: #"\x00"#, count: 128) + "…(872 bytes more)")
    }

    /// Whatever comes in, nothing that a terminal or a log reader acts on comes out.
    @Test func noControlCharacterSurvivesAnyByte() {
        var generator = SplitMix64(seed: 13)
        for _ in 0 ..< 2000 {
            let input = (0 ..< Int.random(in: 0 ... 40, using: &generator)).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
            let output = EscapedText.escape(input, limit: 4096)
            for scalar in output.unicodeScalars {
                #expect(!(scalar.value < 0x20 || (0x7f ... 0x9f).contains(scalar.value) || scalar == "\u{2028}" || scalar == "\u{2029}"),
                        "\(input) gave \(output.debugDescription)")
            }
        }
    }
}

/// A small seeded generator, so that a failure can be replayed.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

@testable import OverseerProtocol
import Testing

/// The hand-written JSON scanner that reads GitHub's release JSON and release manifests.
@Suite struct JSONScannerTests {
    private func parse(_ text: String) throws -> JSONNode { try JSONScanner.parse(Array(text.utf8)) }

    @Test func readsEveryKindOfValue() throws {
        let node = try parse(#"{"s":"x","n":-12.5e+3,"t":true,"f":false,"z":null,"a":[1,[],{}],"o":{"k":"v"}}"#)
        #expect(node["s"] == .string("x"))
        #expect(node["n"] == .number("-12.5e+3"))
        #expect(node["t"] == .bool(true))
        #expect(node["f"] == .bool(false))
        #expect(node["z"] == .null)
        #expect(node["a"] == .array([.number("1"), .array([]), .object([])]))
        #expect(node["o"]?["k"] == .string("v"))
    }

    @Test func toleratesWhitespaceEverywhere() throws {
        let node = try parse(" \r\n\t{ \"a\" \n:\t[ 1 ,\r\n 2 ] , \"b\" : { } }\n ")
        #expect(node["a"] == .array([.number("1"), .number("2")]))
        #expect(node["b"] == .object([]))
    }

    @Test(arguments: [
        (#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{08}\u{0C}\n\r\t"),
        (#""\u00e9\u00E8""#, "éè"),
        (#""\ud83d\ude80""#, "🚀"),
        (#""\ud83d x""#, "\u{FFFD} x"),
        (#""\ude80""#, "\u{FFFD}"),
        ("\"raw é 🚀\"", "raw é 🚀"),
        (#""{\"not\": [\"json\"]}""#, #"{"not": ["json"]}"#),
    ])
    func decodesEscapes(json: String, expected: String) throws {
        #expect(try parse(json) == .string(expected))
    }

    @Test func theFirstOfRepeatedKeysWins() throws {
        #expect(try parse(#"{"k":1,"k":2}"#)["k"] == .number("1"))
    }

    @Test(arguments: [
        "", "{", "}", "[1,]", "{\"a\":}", "{\"a\" 1}", "{'a':1}", "[01]", "[1.]", "[-]", "[1e]",
        "\"tab\there\"", "\"unterminated", #""\x""#, #""\u12""#, #""\u+123""#, "tru", "nul", "[1] 2", "{\"a\":1,}",
    ])
    func rejectsWhatIsNotJSON(text: String) {
        #expect(throws: JSONScanner.Failure.self) { try parse(text) }
    }

    @Test func limitsNesting() throws {
        #expect(throws: JSONScanner.Failure.self) { try parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)) }
        _ = try parse(String(repeating: "[", count: 64) + String(repeating: "]", count: 64))
    }

    @Test func failuresSayWhere() {
        #expect(throws: JSONScanner.Failure(offset: 7, reason: "',' or '}' was expected")) { try parse(#"{"a":1 "b":2}"#) }
    }
}

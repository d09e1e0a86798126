import OverseerProtocol
import Testing

@Suite struct SocketNameTests {
    @Test(arguments: ["web", "a", "http-8080", "x.y_z", "~!#$%^&*()", String(repeating: "n", count: 255)])
    func acceptsPrintableASCII(_ text: String) throws {
        let name = try SocketName(text)
        #expect(name.rawValue == text)
        #expect(name.description == text)
    }

    @Test(arguments: [
        ("", "bad socket name \"\": it is empty"),
        (String(repeating: "n", count: 256), "it is longer than 255 characters"),
        ("a:b", "only printable ASCII without ':' or spaces is allowed"),
        (":", "only printable ASCII without ':' or spaces is allowed"),
        ("a b", "only printable ASCII without ':' or spaces is allowed"),
        ("tab\there", "only printable ASCII without ':' or spaces is allowed"),
        ("new\nline", "only printable ASCII without ':' or spaces is allowed"),
        ("wéb", "bad socket name \"wéb\": only printable ASCII"),
        ("日本", "only printable ASCII"),
        ("del\u{7f}", "only printable ASCII"),
    ])
    func rejects(_ text: String, _ message: String) {
        #expect {
            _ = try SocketName(text)
        } throws: { error in
            (error as? ProtocolError)?.description.contains(message) == true
        }
    }

    @Test func lengthCountsBytesNotCharacters() {
        // 128 two-byte characters are 256 bytes: too long even before the ASCII check.
        let text = String(repeating: "é", count: 128)
        #expect(throws: ProtocolError.self) { try SocketName(text) }
        let error = try? #require(throws: ProtocolError.self) { try SocketName(text) }
        #expect(error?.description.hasSuffix("it is longer than 255 characters") == true)
    }

    @Test func unnamedIsSystemdsUnknown() throws {
        #expect(SocketName.unnamed.rawValue == "unknown")
        #expect(try SocketName("unknown") == .unnamed)
    }
}

import OverseerProtocol
import Testing

/// Release manifests: what is read, what is refused, and where the binary is.
@Suite struct ReleaseManifestTests {
    static let hash = String(repeating: "ab", count: 32)

    static func parse(_ text: String) throws -> ReleaseManifest { try ReleaseManifest(parsing: Array(text.utf8)) }

    @Test func readsTheFieldsAndIgnoresUnknownOnes() throws {
        let manifest = try Self.parse(#"""
            {"version": "2.0.0", "url": "app-2.0.0-{os}-{arch}", "sha256": "\#(Self.hash.uppercased())",
             "staging_percent": 30, "yanked": ["1.9.0", "1.9.1"], "notes": {"any": [1, true, null]}, "size": 1.5e6}
            """#)
        #expect(manifest == ReleaseManifest(version: "2.0.0", url: "app-2.0.0-{os}-{arch}", sha256: Self.hash,
                                            stagingPercent: 30, yanked: ["1.9.0", "1.9.1"]))
        #expect(try Self.parse(#"{"version":"1","url":"u","sha256":"\#(Self.hash)"}"#).stagingPercent == 100)
    }

    @Test(arguments: [
        ("{}", "no \"version\""),
        (#"{"version":"1","url":"u"}"#, "no \"sha256\""),
        (#"{"version":"1","url":"u","sha256":"abc"}"#, "64 hex digits"),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","staging_percent":101}"#, "from 0 to 100"),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","staging_percent":"30"}"#, "from 0 to 100"),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","staging_percent":30.5}"#, "from 0 to 100"),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","yanked":"1.0"}"#, "not a list"),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","yanked":[1]}"#, "other than version strings"),
        (#"{"version":"a\u001bb","url":"u","sha256":"\#(hash)"}"#, "control characters"),
        (#"{"version":"","url":"u","sha256":"\#(hash)"}"#, "non-empty"),
        ("[1,2]", "not a JSON object"),
        ("{\"version\":", "not JSON"),
    ])
    func malformedManifestsAreRefusedWithAReason(text: String, reason: String) {
        #expect { try Self.parse(text) } throws: { ($0 as? ProtocolError)?.description.contains(reason) == true }
    }

    @Test(arguments: [
        ("https://releases.example.com/app/manifest.json", "https://releases.example.com/app/app-linux-amd64"),
        ("https://releases.example.com/manifest.json?sig=1", "https://releases.example.com/app-linux-amd64"),
        ("https://releases.example.com", "https://releases.example.com/app-linux-amd64"),
        ("s3://bucket/app/manifest.json", "s3://bucket/app/app-linux-amd64"),
        ("/srv/releases/manifest.json", "/srv/releases/app-linux-amd64"),
        ("manifest.json", "app-linux-amd64"),
    ])
    func relativeURLsResolveAgainstTheManifest(manifestURL: String, expected: String) {
        let manifest = ReleaseManifest(version: "1", url: "app-{os}-{arch}", sha256: Self.hash)
        #expect(manifest.binaryURL(manifestURL: manifestURL, os: "linux", arch: "amd64") == expected)
    }

    @Test func absoluteURLsStayAsTheyAre() {
        let manifest = ReleaseManifest(version: "1", url: "https://cdn.example.com/{arch}/app", sha256: Self.hash)
        #expect(manifest.binaryURL(manifestURL: "s3://b/m.json", os: "linux", arch: "arm64") == "https://cdn.example.com/arm64/app")
    }
}

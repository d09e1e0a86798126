import OverseerProtocol
import Testing

/// Release manifests: what is read, what is refused, and where the binary is.
@Suite struct ReleaseManifestTests {
    static let hash = String(repeating: "ab", count: 32)

    static func parse(_ text: String) throws -> ReleaseManifest { try ReleaseManifest(parsing: Array(text.utf8)) }

    @Test func readsTheFieldsAndIgnoresUnknownOnes() throws {
        let manifest = try Self.parse(#"""
            {"version": "2.0.0", "url": "app-2.0.0-{os}-{arch}", "sha256": "\#(Self.hash.uppercased())",
             "staging_percent": 30, "yanked": ["1.9.0", "1.9.1"], "notes": {"any": [1, true, null]}, "length": 1.5e6}
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
        (#"{"version":"1","url":"u","sha256":"\#(hash)","url":"/etc/x"}"#, "key \"url\" twice"),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","\u0075rl":"v"}"#, "key \"url\" twice"),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","notes":[{"a":1,"a":2}]}"#, "key \"a\" twice"),
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
    func relativeURLsResolveAgainstTheManifest(manifestURL: String, expected: String) throws {
        let manifest = ReleaseManifest(version: "1", url: "app-{os}-{arch}", sha256: Self.hash)
        #expect(try manifest.binaryURL(manifestURL: manifestURL, os: "linux", arch: "amd64") == expected)
    }

    @Test func absoluteURLsStayAsTheyAre() throws {
        let manifest = ReleaseManifest(version: "1", url: "https://cdn.example.com/{arch}/app", sha256: Self.hash)
        #expect(try manifest.binaryURL(manifestURL: "s3://b/m.json", os: "linux", arch: "arm64") == "https://cdn.example.com/arm64/app")
    }

    /// A manifest fetched over the network never names a local file; on s3 a
    /// relative url stays in the manifest's bucket.
    @Test(arguments: [
        ("https://r.example.com/app/m.json", "/rel/app-2.0.0", "https://r.example.com/rel/app-2.0.0"),
        ("https://r.example.com/app/m.json", "//cdn.example.com/x", "https://cdn.example.com/x"),
        ("http://r.example.com:8080/a/b/m.json?sig=1#f", "../c/./app", "http://r.example.com:8080/a/c/app"),
        ("https://r.example.com/app/m.json", "../../../app", "https://r.example.com/app"),
        ("https://r.example.com/app/m.json", "?v=2", "https://r.example.com/app/m.json?v=2"),
        ("https://r.example.com/app/m.json", "s3://other/key", "s3://other/key"),
        ("s3://bucket/app/m.json", "/other/key", "s3://bucket/other/key"),
        ("s3://bucket/app/m.json", "../key", "s3://bucket/key"),
        ("s3://bucket/app/m.json", "//other/key", "s3://other/key"),
        ("/srv/releases/m.json", "../app", "/srv/app"),
        ("/srv/releases/m.json", "/opt/app", "/opt/app"),
        ("/srv/releases/m.json", "file:///opt/app", "/opt/app"),
        ("/srv/releases/m.json", "app?x#y", "/srv/releases/app?x#y"),
    ])
    func networkManifestsResolvePerRFC3986(manifestURL: String, url: String, expected: String) throws {
        let manifest = ReleaseManifest(version: "1", url: url, sha256: Self.hash)
        #expect(try manifest.binaryURL(manifestURL: manifestURL, os: "linux", arch: "amd64") == expected)
    }

    @Test(arguments: [
        ("https://r.example.com/m.json", "file:///etc/shadow", "http(s):// or s3://"),
        ("https://r.example.com/m.json", "ftp://h/x", "http(s):// or s3://"),
        ("https://r.example.com/m.json", "https:///x", "no host"),
        ("s3://bucket/app/m.json", "../../other/key", "climbs above the bucket"),
        ("s3://bucket/app/m.json", "/../other/key", "climbs above the bucket"),
        ("s3://bucket/app/m.json", "%2e%2e/%2E%2E/other/key", "percent encoding"),
        ("s3://bucket/app/m.json", "..%2fother/key", "percent encoding"),
        ("s3://bucket/app/m.json", "..\\..\\other/key", "backslash"),
        ("/srv/m.json", "//host/x", "without a scheme"),
        ("/srv/m.json", "gopher://h/x", "scheme gopher"),
    ])
    func urlsLeavingTheirOriginAreRefused(manifestURL: String, url: String, reason: String) {
        let manifest = ReleaseManifest(version: "1", url: url, sha256: Self.hash)
        #expect { try manifest.binaryURL(manifestURL: manifestURL, os: "linux", arch: "amd64") } throws: {
            ($0 as? ProtocolError)?.description.contains(reason) == true
        }
    }
}

/// The fields that make a manifest trusted (docs/PROTOCOL.md, docs/release-manifest.schema.json).
@Suite struct ReleaseManifestTrustFieldsTests {
    static let hash = ReleaseManifestTests.hash
    static let key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"

    @Test func readsTheTrustFields() throws {
        let manifest = try ReleaseManifestTests.parse(#"""
            {"name": "app", "sequence": 42, "expires": "2027-01-31T00:00:00Z", "version": "2.0.0", "url": "u",
             "sha256": "\#(Self.hash)", "size": 7340032, "keys": ["\#(Self.key)"], "signatures_required": 1}
            """#)
        #expect(manifest.name == "app" && manifest.sequence == 42 && manifest.size == 7_340_032)
        #expect(manifest.expires == RFC3339.parse("2027-01-31T00:00:00Z"))
        #expect(manifest.keys == [Self.key] && manifest.signaturesRequired == 1)
        let plain = try ReleaseManifestTests.parse(#"{"version":"1","url":"u","sha256":"\#(Self.hash)"}"#)
        #expect(plain.name == nil && plain.sequence == nil && plain.size == nil && plain.expires == nil && plain.keys == nil)
    }

    @Test(arguments: [
        (#""sequence":0"#, "\"sequence\" is not"), (#""sequence":-1"#, "\"sequence\" is not"), (#""sequence":1.5"#, "\"sequence\" is not"),
        (#""sequence":"7""#, "\"sequence\" is not"), (#""sequence":99999999999999999999"#, "\"sequence\" is not"),
        (#""sequence":1e3"#, "\"sequence\" is not"), (#""size":0"#, "\"size\" is not"), (#""size":-5"#, "\"size\" is not"),
        (#""expires":"tomorrow""#, "RFC 3339"), (#""expires":1767225600"#, "\"expires\" is not a non-empty string"),
        (#""name":"""#, "\"name\" is not a non-empty string"), (#""keys":[]"#, "\"keys\" is not a list"),
        (#""keys":"RWQ""#, "\"keys\" is not a list"), (#""keys":["not base64!"]"#, "minisign public keys"),
        (#""keys":["RWQ"],"signatures_required":0"#, "\"signatures_required\" is not"),
        (#""signatures_required":1"#, "without \"keys\""),
    ])
    func malformedTrustFieldsAreRefused(field: String, reason: String) {
        let text = #"{"version":"1","url":"u","sha256":"\#(Self.hash)",\#(field)}"#
        #expect { try ReleaseManifestTests.parse(text) } throws: { ($0 as? ProtocolError)?.description.contains(reason) == true }
    }
}

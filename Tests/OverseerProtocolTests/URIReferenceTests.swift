import OverseerProtocol
import Testing

/// RFC 3986 section 5.4: every example, resolved against its base.
@Suite struct URIReferenceTests {
    static let base = "http://a/b/c/d;p?q"

    @Test(arguments: [
        // 5.4.1 Normal examples
        ("g:h", "g:h"), ("g", "http://a/b/c/g"), ("./g", "http://a/b/c/g"), ("g/", "http://a/b/c/g/"),
        ("/g", "http://a/g"), ("//g", "http://g"), ("?y", "http://a/b/c/d;p?y"), ("g?y", "http://a/b/c/g?y"),
        ("#s", "http://a/b/c/d;p?q#s"), ("g#s", "http://a/b/c/g#s"), ("g?y#s", "http://a/b/c/g?y#s"),
        (";x", "http://a/b/c/;x"), ("g;x", "http://a/b/c/g;x"), ("g;x?y#s", "http://a/b/c/g;x?y#s"),
        ("", "http://a/b/c/d;p?q"), (".", "http://a/b/c/"), ("./", "http://a/b/c/"), ("..", "http://a/b/"),
        ("../", "http://a/b/"), ("../g", "http://a/b/g"), ("../..", "http://a/"), ("../../", "http://a/"),
        ("../../g", "http://a/g"),
        // 5.4.2 Abnormal examples
        ("../../../g", "http://a/g"), ("../../../../g", "http://a/g"), ("/./g", "http://a/g"), ("/../g", "http://a/g"),
        ("g.", "http://a/b/c/g."), (".g", "http://a/b/c/.g"), ("g..", "http://a/b/c/g.."), ("..g", "http://a/b/c/..g"),
        ("./../g", "http://a/b/g"), ("./g/.", "http://a/b/c/g/"), ("g/./h", "http://a/b/c/g/h"), ("g/../h", "http://a/b/c/h"),
        ("g;x=1/./y", "http://a/b/c/g;x=1/y"), ("g;x=1/../y", "http://a/b/c/y"), ("g?y/./x", "http://a/b/c/g?y/./x"),
        ("g?y/../x", "http://a/b/c/g?y/../x"), ("g#s/./x", "http://a/b/c/g#s/./x"), ("g#s/../x", "http://a/b/c/g#s/../x"),
        ("http:g", "http:g"),
    ])
    func resolvesAsTheRFCSays(reference: String, expected: String) {
        let resolution = URIReference(parsing: reference).resolved(against: URIReference(parsing: Self.base))
        #expect(resolution.target.text == expected)
    }

    @Test func climbingAboveTheRootIsNoticed() {
        let base = URIReference(parsing: "s3://bucket/dir/m.json")
        #expect(URIReference(parsing: "../key").resolved(against: base).climbedAboveRoot == false)
        #expect(URIReference(parsing: "../../other/key").resolved(against: base).climbedAboveRoot == true)
        #expect(URIReference(parsing: "/../other/key").resolved(against: base).climbedAboveRoot == true)
        #expect(URIReference(parsing: "a/../../key").resolved(against: base).climbedAboveRoot == false)
    }

    @Test func splitsIntoFiveParts() {
        let reference = URIReference(parsing: "HTTPS://user@h:8080/p/q?x=1#frag")
        #expect(reference == URIReference(scheme: "https", authority: "user@h:8080", path: "/p/q", query: "x=1", fragment: "frag"))
        #expect(URIReference(parsing: "a/b:c").scheme == nil)
        #expect(URIReference(parsing: "1x:y").scheme == nil)
        #expect(URIReference(parsing: "//h").authority == "h")
    }
}

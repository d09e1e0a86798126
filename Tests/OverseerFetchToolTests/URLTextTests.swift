@testable import overseerd_fetch
import Testing

/// URL text helpers: sidecar URLs, `.gz` detection, S3 key encoding.
@Suite struct URLTextTests {
    @Test(arguments: [
        ("https://h/a/tool", "https://h/a/tool.sha256"),
        ("https://h/a/tool?X-Sig=1&b=2", "https://h/a/tool.sha256?X-Sig=1&b=2"),
        ("https://h/a/tool#frag", "https://h/a/tool.sha256#frag"),
    ])
    func sidecarURLsAppendToThePath(url: String, expected: String) {
        #expect(URLText.appendingToPath(url, ".sha256") == expected)
    }

    @Test func gzIsJudgedOnThePath() {
        #expect(URLText.pathEndsInGz("https://h/tool.GZ"))
        #expect(URLText.pathEndsInGz("https://h/tool.gz?sig=abc"))
        #expect(!URLText.pathEndsInGz("https://h/tool?name=x.gz"))
        #expect(!URLText.pathEndsInGz("https://h/tool.tgz"))
    }

    @Test func s3KeysArePercentEncoded() {
        #expect(URLText.encodingPath("dir/my tool+1~é") == "dir/my%20tool%2B1~%C3%A9")
    }

    @Test func s3URLs() {
        let options = FetchOptions(source: .s3(bucket: "b", key: "k"), sourceText: "s3://b/k")
        let environment: (String) -> String? = { ["AWS_DEFAULT_REGION": "eu-west-3", "AWS_ACCESS_KEY_ID": "id",
                                                  "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "tok"][$0] }
        let object = S3Object(bucket: "b", key: "d/k", options: options, environment: environment)
        let request = object.request(suffix: ".sha256")
        #expect(request.url == "https://b.s3.eu-west-3.amazonaws.com/d/k.sha256")
        #expect(request.signing == AWSSigning(region: "eu-west-3", accessKeyID: "id", secretAccessKey: "secret"))
        #expect(request.signing?.curlParameter == "aws:amz:eu-west-3:s3")
        #expect(request.headers.contains("x-amz-security-token: tok"))
        #expect(request.headers.contains("x-amz-content-sha256: " + S3Object.emptyPayloadSHA256))
        let anonymous = S3Object(bucket: "b", key: "k", options: options, environment: { _ in nil })
        #expect(anonymous.region == "us-east-1")
        #expect(anonymous.request().signing == nil)
        #expect(anonymous.request().headers.isEmpty)
    }
}

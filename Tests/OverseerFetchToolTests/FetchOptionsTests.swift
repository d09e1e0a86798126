@testable import overseerd_fetch
import Testing

/// The command line, parsed without running anything.
@Suite struct FetchOptionsTests {
    private func options(_ arguments: [String]) throws -> FetchOptions {
        guard case let .fetch(options) = try FetchOptions.parse(arguments) else {
            throw FetchFailure(.usage, "expected a fetch")
        }
        return options
    }

    @Test func defaultsAreTheDocumentedOnes() throws {
        let parsed = try options(["https://example.com/tool"])
        #expect(parsed.source == .http("https://example.com/tool"))
        #expect(parsed.outputFD == 3)
        #expect(parsed.maxSize == 1_073_741_824)
        #expect(parsed.connectTimeoutMilliseconds == 10_000)
        #expect(parsed.lowSpeedTimeSeconds == 30)
        #expect(parsed.maxTimeMilliseconds == 3_600_000)
        #expect(parsed.maxRedirects == 5)
        #expect(parsed.githubAPIURL == "https://api.github.com")
        #expect(parsed.sidecars.isEmpty)
    }

    @Test func readsEveryOption() throws {
        let parsed = try options([
            "--output-fd", "7", "--etag=\"abc\"", "--last-modified", "Wed, 21 Oct 2015 07:28:00 GMT",
            "--max-size", "1000", "--connect-timeout", "2.5", "--low-speed-time", "1.2", "--max-time", "60",
            "--max-redirects", "0", "--sidecar", ".sha256", "--sidecar", ".minisig", "--s3-endpoint", "http://127.0.0.1:9000",
            "--s3-region", "eu-west-1", "--github-api-url", "http://127.0.0.1:1", "--asset-pattern", "*linux*", "s3://b/k/e y",
        ])
        #expect(parsed.outputFD == 7)
        #expect(parsed.etag == "\"abc\"")
        #expect(parsed.lastModified == "Wed, 21 Oct 2015 07:28:00 GMT")
        #expect(parsed.maxSize == 1000)
        #expect(parsed.connectTimeoutMilliseconds == 2500)
        #expect(parsed.lowSpeedTimeSeconds == 2)
        #expect(parsed.maxTimeMilliseconds == 60_000)
        #expect(parsed.maxRedirects == 0)
        #expect(parsed.sidecars == [".sha256", ".minisig"])
        #expect(parsed.s3Endpoint == "http://127.0.0.1:9000")
        #expect(parsed.s3Region == "eu-west-1")
        #expect(parsed.githubAPIURL == "http://127.0.0.1:1")
        #expect(parsed.assetPattern == "*linux*")
        #expect(parsed.source == .s3(bucket: "b", key: "k/e y"))
    }

    @Test(arguments: [
        ("github:acme/tool", FetchSource.github(owner: "acme", repo: "tool")),
        ("HTTP://Example.com/x", .http("HTTP://Example.com/x")),
        ("s3://my.bucket/dir/key.gz", .s3(bucket: "my.bucket", key: "dir/key.gz")),
    ])
    func readsSources(text: String, expected: FetchSource) {
        #expect(FetchSource(parsing: text) == expected)
    }

    @Test(arguments: ["http://", "https:///path", "s3://bucket", "s3:///key", "github:a/b/c", "github:/b", "file:///x", "/usr/bin/x"])
    func rejectsSources(text: String) {
        #expect(FetchSource(parsing: text) == nil)
    }

    @Test func helpWins() throws {
        #expect(try FetchOptions.parse(["--max-size", "1", "--help"]) == .help)
    }

    @Test(arguments: [
        ["--etag", "a\r\nX-Injected: 1", "http://h/"],
        ["--sidecar", "../x", "http://h/"],
        ["--max-redirects", "-1", "http://h/"],
        ["--low-speed-time", "nan", "http://h/"],
        ["--s3-endpoint", "127.0.0.1:9000", "s3://b/k"],
        ["-x", "http://h/"],
    ])
    func rejectsBadValues(arguments: [String]) {
        #expect(throws: FetchFailure.self) { try FetchOptions.parse(arguments) }
    }
}

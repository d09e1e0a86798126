import Foundation
import Glibc
import OverseerProtocol
import Testing

/// Bad command lines: kind "usage", exit 64, and --help.
@Suite struct UsageTests {
    @Test(arguments: [
        [String](),
        ["ftp://example.invalid/x"],
        ["http://a.invalid/1", "http://a.invalid/2"],
        ["--max-size", "lots", "http://a.invalid/"],
        ["--connect-timeout", "0", "http://a.invalid/"],
        ["--no-such-option", "http://a.invalid/"],
        ["--etag"],
        ["--etag", "a", "--etag", "b", "http://a.invalid/"],
        ["s3://bucket-only"],
        ["github:owner-only"],
        ["--output-fd", "57", "http://a.invalid/"],
    ])
    func badArgumentsExit64(arguments: [String]) throws {
        let run = try FetchTool.run(arguments)
        #expect(run.exitStatus == 64, "\(run.summary)")
        #expect(run.report?.result == .error)
        #expect(run.report?.kind == "usage")
        #expect(run.report?.message?.isEmpty == false)
    }

    @Test func helpDescribesTheContract() throws {
        let run = try FetchTool.run(["--help"])
        #expect(run.exitStatus == 0)
        for word in ["--output-fd", "--etag", "--last-modified", "--max-size", "--connect-timeout", "--low-speed-time",
                     "--max-time", "--max-redirects", "--sidecar", "--s3-endpoint", "--s3-region",
                     "--github-api-url", "--asset-pattern", "s3://BUCKET/KEY", "github:OWNER/REPO"] {
            #expect(run.stdout.contains(word), "--help does not mention \(word)")
        }
    }
}

import Foundation
import OverseerProtocol
import Testing

/// `github:OWNER/REPO` against recorded-style release JSON from the local server.
@Suite struct GitHubFetchTests {
    let server: TestServer

    init() throws { server = try TestServer.shared.get() }

    private func api(_ prefix: String = "/github") -> [String] { ["--github-api-url", server.base + prefix] }

    #if arch(x86_64)
    @Test func takesTheLinuxAssetForThisArchitecture() throws {
        let run = try FetchTool.run(api() + ["--sidecar", ".sha256", "github:acme/tool"])
        #expect(run.exitStatus == 0, "\(run.summary)")
        let report = try #require(run.report)
        #expect(report.result == .downloaded)
        #expect(run.written == server.fixtures["linux.bin"])
        #expect(report.sha256 == server.digests["linux.bin"])
        #expect(report.url == "\(server.base)/assets/linux")
        #expect(report.fields["asset"] == .string("tool-1.2.0-linux-x86_64"))
        #expect(report.fields["tag"] == .string("v1.2.0"))
        // The validators are the release JSON's, which the next poll sends back.
        #expect(report.etag == "W/\"release-7\"")
        #expect(report.sidecar(".sha256") == server.digests["linux.bin"]! + "  tool-1.2.0-linux-x86_64\n")
    }
    #endif

    @Test func thePatternOverridesTheChoice() throws {
        let run = try FetchTool.run(api() + ["--asset-pattern", "*-darwin-*", "github:acme/tool"])
        #expect(run.exitStatus == 0, "\(run.summary)")
        #expect(run.written == server.fixtures["darwin.bin"])
        #expect(run.report?.sha256 == server.digests["darwin.bin"])
        #expect(run.report?.fields["asset"] == .string("tool-1.2.0-darwin-arm64"))
    }

    @Test func anUnchangedReleaseIsNotModified() throws {
        let run = try FetchTool.run(api() + ["--etag", "W/\"release-7\"", "github:acme/tool"])
        #expect(run.exitStatus == 0, "\(run.summary)")
        #expect(run.report?.result == .notModified)
        #expect(run.report?.etag == "W/\"release-7\"")
        #expect(run.written.isEmpty)
    }

    @Test func aPatternMatchingNothingNamesTheAssets() throws {
        let run = try FetchTool.run(api() + ["--asset-pattern", "*windows*", "github:acme/tool"])
        #expect(run.exitStatus == 1, "\(run.summary)")
        #expect(run.report?.kind == "format")
        #expect(run.report?.message?.contains("tool-1.2.0-darwin-arm64") == true)
        #expect(run.written.isEmpty)
    }

    @Test func theTokenGoesToTheAPIOnly() throws {
        let without = try FetchTool.run(api("/github-private") + ["--asset-pattern", "*linux*", "github:acme/tool"])
        #expect(without.report?.kind == "http", "\(without.summary)")
        #expect(without.report?.status == 401)
        // The server refuses asset downloads that carry a token.
        let with = try FetchTool.run(api("/github-private") + ["--asset-pattern", "*linux*", "github:acme/tool"],
                                     environment: ["GITHUB_TOKEN": "test-token"])
        #expect(with.exitStatus == 0, "\(with.summary)")
        #expect(with.written == server.fixtures["linux.bin"])
    }

    @Test func aMissingSidecarAssetIsASidecarError() throws {
        let run = try FetchTool.run(api("/github-noside") + ["--asset-pattern", "*linux*", "--sidecar", ".sha256", "github:acme/tool"])
        #expect(run.exitStatus == 1, "\(run.summary)")
        #expect(run.report?.kind == "sidecar")
        #expect(run.report?.message?.contains("tool-1.2.0-linux-x86_64.sha256") == true)
    }

    @Test func anUnknownRepositoryIsAnHTTPError() throws {
        let run = try FetchTool.run(api() + ["github:acme/other"])
        #expect(run.report?.kind == "http", "\(run.summary)")
        #expect(run.report?.status == 404)
        #expect(run.report?.message?.contains("Not Found") == true)
    }
}

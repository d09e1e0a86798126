import Foundation
import OverseerProtocol
import Testing

/// overseerd-fetch against the local Python server: the paths that end in a download or a 304.
@Suite struct HTTPFetchTests {
    let server: TestServer

    init() throws { server = try TestServer.shared.get() }

    @Test func downloadsWithValidatorsAndHashesWhatItWrote() throws {
        let run = try FetchTool.run(["\(server.base)/bin"])
        #expect(run.exitStatus == 0, "\(run.summary)")
        let report = try #require(run.report, "\(run.summary)")
        #expect(report.result == .downloaded)
        #expect(run.written == server.fixtures["payload.bin"])
        #expect(report.bytes == 300_000)
        #expect(report.sha256 == server.digests["payload.bin"])
        #expect(report.etag == "\"v1-5f3a\"")
        #expect(report.lastModified == "Wed, 21 Oct 2015 07:28:00 GMT")
        #expect(report.url == "\(server.base)/bin")
    }

    @Test func answers304ToTheETag() throws {
        let run = try FetchTool.run(["--etag", "\"v1-5f3a\"", "\(server.base)/bin"])
        #expect(run.exitStatus == 0, "\(run.summary)")
        #expect(run.report == FetchReport(result: .notModified, fields: [
            "etag": .string("\"v1-5f3a\""), "last_modified": .string("Wed, 21 Oct 2015 07:28:00 GMT"),
        ]))
        #expect(run.written.isEmpty)
    }

    @Test func answers304ToLastModified() throws {
        let run = try FetchTool.run(["--last-modified", "Wed, 21 Oct 2015 07:28:00 GMT", "\(server.base)/bin"])
        #expect(run.report?.result == .notModified, "\(run.summary)")
        #expect(run.written.isEmpty)
    }

    @Test func aChangedETagDownloadsAgain() throws {
        let run = try FetchTool.run(["--etag", "\"v0-old\"", "--output-fd=3", "\(server.base)/bin"])
        #expect(run.report?.result == .downloaded, "\(run.summary)")
        #expect(run.written == server.fixtures["payload.bin"])
    }

    @Test func followsRedirectsAndReportsTheFinalURL() throws {
        let run = try FetchTool.run(["\(server.base)/redirect/3"])
        #expect(run.exitStatus == 0, "\(run.summary)")
        #expect(run.report?.url == "\(server.base)/bin")
        #expect(run.report?.sha256 == server.digests["payload.bin"])
        #expect(run.written == server.fixtures["payload.bin"])
    }

    @Test func fetchesSidecarsBesideTheBinary() throws {
        let run = try FetchTool.run(["--sidecar", ".sha256", "--sidecar", ".minisig", "\(server.base)/bin"])
        #expect(run.exitStatus == 0, "\(run.summary)")
        let report = try #require(run.report)
        #expect(report.sidecar(".sha256") == server.digests["payload.bin"]! + "  bin\n")
        #expect(report.sidecar(".minisig") == "untrusted comment: signature from minisign secret key\nRWQAAAAA\n")
        #expect(run.written == server.fixtures["payload.bin"])
    }
}

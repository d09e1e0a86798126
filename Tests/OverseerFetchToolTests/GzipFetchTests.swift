import Foundation
import Testing

/// Compressed bodies: Content-Encoding (libcurl decodes) and `.gz` paths (zlib inflates as it streams).
@Suite struct GzipFetchTests {
    let server: TestServer

    init() throws { server = try TestServer.shared.get() }

    @Test(arguments: [
        "/ce/bin",        // Content-Encoding: gzip
        "/bin.gz",        // a .gz file
        "/ce/bin.gz",     // a .gz file that the server also labels Content-Encoding: gzip (one layer in all)
        "/double/bin.gz", // a .gz file sent with Content-Encoding: gzip on top (two layers)
    ])
    func writesTheInflatedBytes(path: String) throws {
        let run = try FetchTool.run(["\(server.base)\(path)"])
        #expect(run.exitStatus == 0, "\(run.summary)")
        #expect(run.report?.bytes == 300_000)
        #expect(run.report?.sha256 == server.digests["payload.bin"])
        #expect(run.written == server.fixtures["payload.bin"])
    }

    @Test func maxSizeCountsInflatedBytes() throws {
        let run = try FetchTool.run(["--max-size", "100000", "\(server.base)/bin.gz"])
        #expect(run.exitStatus == 1, "\(run.summary)")
        #expect(run.report?.kind == "size")
        #expect(run.written.count <= 100_000)
    }

    @Test func aCutGzipStreamIsAFormatError() throws {
        let run = try FetchTool.run(["\(server.base)/cut/bin.gz"])
        #expect(run.exitStatus == 1, "\(run.summary)")
        #expect(run.report?.kind == "format")
        #expect(run.report?.message?.contains("\(server.base)/cut/bin.gz") == true)
    }

    @Test func aGzPathThatIsNotGzipIsAFormatError() throws {
        let run = try FetchTool.run(["\(server.base)/plain/bin.gz"])
        #expect(run.report?.kind == "format", "\(run.summary)")
        #expect(run.written.isEmpty)
    }
}

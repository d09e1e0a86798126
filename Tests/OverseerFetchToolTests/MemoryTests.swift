import Foundation
import Testing

/// A large download is streamed: overseerd-fetch's peak RSS does not grow with the body.
@Suite struct MemoryTests {
    /// GNU time reports the peak RSS of what it runs. wait4's ru_maxrss for a child of the
    /// test process cannot be used: until exec the child is a fork of the test process (or,
    /// from posix_spawn, runs in its address space), and exec records that high-water mark as the child's.
    static let timeCommand = "/usr/bin/time"

    @Test func a256MiBDownloadIsStreamedAndHashed() throws {
        let server = try TestServer.shared.get()
        let size = 256 << 20
        let digest = try FetchTool.run(["\(server.base)/big.sha256?size=\(size)"])
        let expected = String(decoding: digest.written, as: UTF8.self)
        #expect(expected.count == 64, "\(digest.summary)")

        let directory = try TemporaryDirectory()
        let measured = FileManager.default.isExecutableFile(atPath: Self.timeCommand)
        let rssFile = directory.path + "/maxrss"
        let run = try FetchTool.run(["\(server.base)/big?size=\(size)"], timeout: 50,
                                    wrapper: measured ? [Self.timeCommand, "-f", "%M", "-o", rssFile] : [])
        #expect(run.exitStatus == 0, "\(run.summary)")
        #expect(run.report?.bytes == Int64(size))
        #expect(run.report?.sha256 == expected)
        #expect(run.written.count == size)
        if measured {
            let text = try String(contentsOfFile: rssFile, encoding: .utf8)
            let kilobytes = try #require(Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), "time wrote \(text)")
            #expect(kilobytes < 30 * 1024, "peak RSS \(kilobytes) KiB for a \(size)-byte download")
        } else {
            print("MemoryTests: \(Self.timeCommand) is missing; peak RSS not checked")
        }
    }
}

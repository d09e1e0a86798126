#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerSystem
import Testing

/// The staged copy of a new binary: private, beside the target, gone unless installed.
@Suite struct StagingFileTests {
    /// A fresh directory with a target file in it.
    static func directory() throws -> (String, target: String) {
        var template = Array("/tmp/overseer-staging-test-XXXXXX".utf8CString)
        let path = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        let target = path + "/app"
        FileManager.default.createFile(atPath: target, contents: Data("v1".utf8))
        return (path, target)
    }

    static func stagingFiles(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains("overseerd-staging") }
    }

    @Test func besideTheTargetPrivateAndRemovedWhenDropped() throws {
        let (directory, target) = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var staging: StagingFile? = try StagingFile(beside: target)
        let path = try #require(staging?.path)
        #expect(path.hasPrefix(directory + "/.app.overseerd-staging-"))
        var status = stat()
        #expect(stat(path, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)
        staging = nil
        #expect(try Self.stagingFiles(in: directory).isEmpty)
    }

    @Test func discardRemovesTheFileWhileSomeoneStillHoldsIt() throws {
        let (directory, target) = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var staging: StagingFile? = try StagingFile(beside: target)
        let holder = staging  // e.g. a check still running on it
        let path = try #require(staging?.path)
        staging?.discard()
        staging = nil
        #expect(try Self.stagingFiles(in: directory).isEmpty, "removed at discard(), not when the last holder goes")

        // A file that later appears under the same name is not the discarded one's to remove.
        FileManager.default.createFile(atPath: path, contents: Data("someone else's".utf8))
        _ = consume holder
        #expect(FileManager.default.fileExists(atPath: path))
    }
}

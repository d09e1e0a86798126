#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerSystem
import Testing

/// Putting the last good binary back: only a regular file that hashes to it,
/// and never a read that blocks (a FIFO) or a link that would become the program.
@Suite struct InstallerRollbackTests {
    static func directory(previous: String = "good") throws -> (String, target: String) {
        let (path, target) = try StagingFileTests.directory()
        FileManager.default.createFile(atPath: target + ".previous", contents: Data(previous.utf8))
        return (path, target)
    }

    static func sha256(_ text: String) throws -> String {
        let (path, _) = try StagingFileTests.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        FileManager.default.createFile(atPath: path + "/x", contents: Data(text.utf8))
        return try BinaryIdentity.sha256(ofFileAt: path + "/x")
    }

    @Test func theLastGoodBinaryGoesBackWhenItHashesRight() throws {
        let (path, target) = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let good = try Self.sha256("good")
        #expect(try Installer.rollback(target, expectedSHA256: good) == good)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "good")
    }

    @Test func anotherFileAtPreviousIsRefusedAndNothingMoves() throws {
        let (path, target) = try Self.directory(previous: "planted")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: Installer.Failure.self) { try Installer.rollback(target, expectedSHA256: try Self.sha256("good")) }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "v1")
    }

    @Test(arguments: ["fifo", "symlink"])
    func aPreviousThatIsNoRegularFileIsRefusedAtOnce(kind: String) throws {
        let (path, target) = try StagingFileTests.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        if kind == "fifo" {
            #expect(mkfifo(target + ".previous", 0o600) == 0)
        } else {
            FileManager.default.createFile(atPath: path + "/elsewhere", contents: Data("good".utf8))
            #expect(symlink(path + "/elsewhere", target + ".previous") == 0)
        }
        let started = Date()
        #expect(throws: Installer.Failure.self) { try Installer.rollback(target, expectedSHA256: try Self.sha256("good")) }
        #expect(Date().timeIntervalSince(started) < 5, "no blocking read")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "v1")
        #expect(try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.contains("rollback") }.isEmpty)
    }
}

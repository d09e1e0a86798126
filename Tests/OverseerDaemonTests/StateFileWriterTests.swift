import Foundation
@testable import OverseerDaemon
import OverseerSystem
import Testing

/// The state files' writer on a real event loop and a real directory.
@Suite struct StateFileWriterTests {
    static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "overseerd-writer-\(UInt64.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return path
    }

    @Test func theNewestTextWinsAndEachWriteEndsOnce() throws {
        let reactor = try Reactor()
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let writer = StateFileWriter(file: PrivateStateFile(directory: directory, name: "state", limit: 1024)) { work, then throws(SystemError) in
            try reactor.inBackground(work, then: then)
        }
        var ended: [(String, String?)] = []
        writer.ended = { ended.append(($0, $1)) }
        writer.save("one\n")
        // Queued behind the first: only the newest of these is written.
        writer.save("two\n")
        writer.save("three\n")
        #expect(writer.isBusy)
        // A waiter runs once everything saved so far is on disk, not after the first write.
        var waited: [String] = []
        writer.whenWritten { failure in
            waited.append((try? String(contentsOfFile: directory + "/state", encoding: .utf8)) ?? "none")
            #expect(failure == nil)
        }
        try run(reactor) { !writer.isBusy }
        #expect(waited == ["three\n"])
        #expect(ended.map(\.0) == ["one\n", "three\n"] && ended.allSatisfy { $0.1 == nil })
        #expect(try String(contentsOfFile: directory + "/state", encoding: .utf8) == "three\n")
        // What is on disk is not written again, and a waiter then runs at once.
        writer.save("three\n")
        #expect(!writer.isBusy)
        writer.whenWritten { _ in waited.append("at once") }
        #expect(waited == ["three\n", "at once"])
    }

    @Test func aFailureIsReportedAndTheTextStaysQueuedForTheNextSave() throws {
        let reactor = try Reactor()
        let directory = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Others may write the directory: PrivateStateFile refuses to write there.
        chmod(directory, 0o777)
        let writer = StateFileWriter(file: PrivateStateFile(directory: directory, name: "state", limit: 1024)) { work, then throws(SystemError) in
            try reactor.inBackground(work, then: then)
        }
        var failures: [String] = []
        writer.ended = { _, failure in if let failure { failures.append(failure) } }
        writer.save("one\n")
        try run(reactor) { !writer.isBusy }
        #expect(failures.count == 1 && failures[0].contains("others can write it"), "\(failures)")
        chmod(directory, 0o700)
        writer.save("one\n")
        try run(reactor) { !writer.isBusy }
        #expect(try String(contentsOfFile: directory + "/state", encoding: .utf8) == "one\n")
    }
}

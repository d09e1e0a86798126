#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerChild
import OverseerProtocol
@testable import OverseerSystem
import OverseerTestSupport
import Testing

@Suite struct NotifyAndIdentityTests {
    @Test func receiverSeesWhoSentWhat() throws {
        let receiver = try NotifyReceiver(label: "test")
        defer { receiver.close() }
        let child = OverseerChild(environment: [EnvironmentName.notifySocket: receiver.address], ownPID: getpid())
        #expect(child.ready())
        #expect(child.status("warming up"))
        let datagrams = receiver.receiveAll()
        #expect(datagrams.count == 2)
        #expect(datagrams.allSatisfy { $0.senderPID == getpid() && $0.senderUID == getuid() })
        #expect(datagrams.first?.message.isReady == true)
        #expect(datagrams.last?.message.status == "warming up")
    }

    @Test func oversizedDatagramIsMarkedTruncated() throws {
        let receiver = try NotifyReceiver(label: "big")
        defer { receiver.close() }
        let child = OverseerChild(environment: [EnvironmentName.notifySocket: receiver.address], ownPID: getpid())
        #expect(child.notify([("STATUS", String(repeating: "x", count: 10_000))]))
        let datagrams = receiver.receiveAll()
        #expect(datagrams.count == 1)
        #expect(datagrams.first?.truncated == true)
    }

    @Test func sha256MatchesCoreutils() throws {
        let path = NSTemporaryDirectory() + "overseerd-hash-\(UInt64.random(in: 0 ... .max))"
        defer { unlink(path) }
        var bytes = [UInt8]()
        for index in 0 ..< 200_000 { bytes.append(UInt8(truncatingIfNeeded: index &* 31)) }
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let expected = "\(try BinaryIdentity.sha256(ofFileAt: path))"
        // Known answer for the empty input, and agreement with sha256sum for the file.
        let empty = NSTemporaryDirectory() + "overseerd-empty-\(UInt64.random(in: 0 ... .max))"
        FileManager.default.createFile(atPath: empty, contents: Data())
        defer { unlink(empty) }
        #expect(try BinaryIdentity.sha256(ofFileAt: empty) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let output = shellOutput("sha256sum \(shellQuoted(path))")
        #expect(output.hasPrefix(expected))
    }

    @Test func programLookupFollowsPath() throws {
        let directory = NSTemporaryDirectory() + "overseerd-path-\(UInt64.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory + "/a", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/b", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        FileManager.default.createFile(atPath: directory + "/a/tool", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o644])
        FileManager.default.createFile(atPath: directory + "/b/tool", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755])
        #expect(try ProgramLocator.resolve("tool", path: "\(directory)/a:\(directory)/b") == "\(directory)/b/tool")
        #expect(throws: ProgramLocator.Failure.self) { try ProgramLocator.resolve("tool", path: "\(directory)/a") }
        #expect(throws: ProgramLocator.Failure.self) { try ProgramLocator.resolve(directory, path: nil) }
    }
}

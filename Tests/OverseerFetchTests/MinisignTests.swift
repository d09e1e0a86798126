import Foundation
import OverseerCore
@testable import OverseerFetch
import OverseerTestSupport
import Testing

/// Keys and signatures made by the real minisign (Debian package minisign).
@Suite struct MinisignTests {
    final class Keys {
        let directory: String
        init() throws {
            directory = NSTemporaryDirectory() + "overseerd-minisign-\(UInt64.random(in: 0 ... .max))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try run(["-G", "-W", "-p", "\(directory)/key.pub", "-s", "\(directory)/key.sec"])
        }
        deinit { try? FileManager.default.removeItem(atPath: directory) }

        var publicKeyText: String { (try? String(contentsOfFile: "\(directory)/key.pub", encoding: .utf8)) ?? "" }

        /// Signs `path` (prehashed unless `legacy`) with `comment` as trusted comment.
        func sign(_ path: String, comment: String, legacy: Bool = false) throws -> String {
            try run(["-S", "-s", "\(directory)/key.sec", "-m", path, "-t", comment] + (legacy ? ["-l"] : []))
            return try String(contentsOfFile: path + ".minisig", encoding: .utf8)
        }

        func run(_ arguments: [String]) throws {
            let status = runQuietly("/usr/bin/minisign", arguments)
            guard status == 0 else { throw Minisign.Failure("minisign \(arguments) failed: \(status.map { "status \($0)" } ?? "did not start")") }
        }

        func file(_ name: String, _ contents: String) -> String {
            let path = "\(directory)/\(name)"
            FileManager.default.createFile(atPath: path, contents: Data(contents.utf8))
            return path
        }
    }

    init() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/minisign"), "install the Debian package minisign")
    }

    @Test(arguments: [false, true])
    func validSignatureVerifies(legacy: Bool) throws {
        let keys = try Keys()
        let path = keys.file("app", "binary contents\n")
        let text = try keys.sign(path, comment: "timestamp:1800000000\tfile:app", legacy: legacy)
        let signature = try Minisign.Signature(parsing: text)
        #expect(signature.prehashed == !legacy)
        #expect(signature.timestamp == 1_800_000_000)
        try Minisign.verify(fileAt: path, signature: signature, key: try Minisign.PublicKey(parsing: keys.publicKeyText))
    }

    @Test func tamperedFileIsRejected() throws {
        let keys = try Keys()
        let path = keys.file("app", "binary contents\n")
        let signature = try Minisign.Signature(parsing: try keys.sign(path, comment: "timestamp:1"))
        FileManager.default.createFile(atPath: path, contents: Data("binary contentz\n".utf8))
        #expect(throws: Minisign.Failure("the signature does not match the file")) {
            try Minisign.verify(fileAt: path, signature: signature, key: try Minisign.PublicKey(parsing: keys.publicKeyText))
        }
    }

    @Test func tamperedTrustedCommentIsRejected() throws {
        let keys = try Keys()
        let path = keys.file("app", "binary contents\n")
        let text = try keys.sign(path, comment: "timestamp:1000")
        let forged = text.replacingOccurrences(of: "timestamp:1000", with: "timestamp:9999")
        let signature = try Minisign.Signature(parsing: forged)
        #expect(throws: Minisign.Failure("the trusted comment's signature does not match (tampered comment)")) {
            try Minisign.verify(fileAt: path, signature: signature, key: try Minisign.PublicKey(parsing: keys.publicKeyText))
        }
    }

    @Test func signatureByAnotherKeyIsRejected() throws {
        let signer = try Keys()
        let trusted = try Keys()
        let path = signer.file("app", "binary contents\n")
        let signature = try Minisign.Signature(parsing: try signer.sign(path, comment: "timestamp:1"))
        do {
            try Minisign.verify(fileAt: path, signature: signature, key: try Minisign.PublicKey(parsing: trusted.publicKeyText))
            Issue.record("verified with the wrong key")
        } catch {
            #expect(error.description.hasPrefix("signed by another key"))
        }
    }

    @Test(arguments: ["", "untrusted comment: x\n", "untrusted comment: x\nRWQ=\ntrusted comment: t\nAAAA\n", "garbage"])
    func malformedSignatureFilesAreErrors(text: String) {
        #expect(throws: Minisign.Failure.self) { try Minisign.Signature(parsing: text) }
    }

    @Test func publicKeyFromTheBase64LineAlone() throws {
        let keys = try Keys()
        let line = keys.publicKeyText.split(separator: "\n").last.map(String.init) ?? ""
        #expect(try Minisign.PublicKey(parsing: line) == (try Minisign.PublicKey(parsing: keys.publicKeyText)))
        #expect(throws: Minisign.Failure.self) { try Minisign.PublicKey(parsing: "not base64 at all!") }
    }

    @Test func checksumFileFormats() {
        let hex = String(repeating: "ab", count: 32)
        #expect(ChecksumFile.sha256(in: "\(hex)  app\n") == hex)
        #expect(ChecksumFile.sha256(in: hex.uppercased()) == hex)
        #expect(ChecksumFile.sha256(in: "\(hex) *app") == hex)
        #expect(ChecksumFile.sha256(in: "abc  app") == nil)
        #expect(ChecksumFile.sha256(in: "") == nil)
    }
}

import Foundation
@testable import OverseerFetch
import Testing

/// Several signatures in one `.minisig` (one block per signer), made by the real minisign.
@Suite struct MinisignThresholdTests {
    init() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/minisign"), "install the Debian package minisign")
    }

    /// Three keys, a file, and each key's signature of it.
    final class Setup {
        let keys = try! (0 ..< 3).map { _ in try MinisignTests.Keys() }
        let contents = Array(#"{"name":"app","sequence":1}"#.utf8)
        lazy var path = keys[0].file("manifest.json", String(decoding: contents, as: UTF8.self))
        lazy var publicKeys = keys.map { try! Minisign.PublicKey(parsing: $0.publicKeyText) }

        func signature(by index: Int, legacy: Bool = false) throws -> String {
            let copy = keys[index].file("manifest-\(index).json", String(decoding: contents, as: UTF8.self))
            return try keys[index].sign(copy, comment: "timestamp:\(1000 + index)", legacy: legacy)
        }
    }

    @Test func countsEachTrustedKeyOnceAndSkipsStrangers() throws {
        let setup = Setup()
        let text = try setup.signature(by: 0) + setup.signature(by: 1, legacy: true) + "\n" + setup.signature(by: 2)
        let signatures = try Minisign.signatures(parsing: text)
        #expect(signatures.count == 3)
        let all = Minisign.signers(of: setup.contents, signatures: signatures, keys: setup.publicKeys)
        #expect(all.keys == Set(setup.publicKeys.map(\.base64)))
        #expect(all.oldestTimestamp == 1000)
        // Key 2 is not trusted: its signature is skipped, not an error.
        let two = Minisign.signers(of: setup.contents, signatures: signatures, keys: Array(setup.publicKeys.prefix(2)))
        #expect(two.keys.count == 2 && two.invalid.isEmpty)
        // The same signature twice counts once.
        let repeated = try Minisign.signatures(parsing: setup.signature(by: 0) + setup.signature(by: 0))
        #expect(Minisign.signers(of: setup.contents, signatures: repeated, keys: setup.publicKeys).keys.count == 1)
        // Over other bytes: nothing counts, and why is said.
        let tampered = Minisign.signers(of: setup.contents + [0x20], signatures: signatures, keys: setup.publicKeys)
        #expect(tampered.keys.isEmpty && tampered.invalid.count == 3)
        #expect(tampered.shortfall(required: 2, keys: setup.publicKeys, signatures: signatures).contains("valid signatures by 0 of the 3 trusted key(s), 2 required"))
        // The file on disk gives the same answer.
        #expect(Minisign.signers(ofFileAt: setup.path, signatures: signatures, keys: setup.publicKeys).keys.count == 3)
    }

    @Test func theBase64LineIsTheKeysOwn() throws {
        let setup = Setup()
        for (key, keys) in zip(setup.publicKeys, setup.keys) {
            let line = keys.publicKeyText.split(separator: "\n").last.map(String.init)
            #expect(key.base64 == line)
        }
    }

    @Test func aMalformedBlockRefusesTheFile() throws {
        let setup = Setup()
        let good = try setup.signature(by: 0)
        for text in [good + "untrusted comment: x\n", good + String(good.dropFirst(5)), "", good + "untrusted comment: a\nRWQ\ntrusted comment: b\nAAAA\n"] {
            #expect(throws: Minisign.Failure.self) { try Minisign.signatures(parsing: text) }
        }
        let many = String(repeating: good, count: Minisign.maximumSignatures + 1)
        #expect { try Minisign.signatures(parsing: many) } throws: { "\($0)".contains("over \(Minisign.maximumSignatures)") }
        // CRLF line ends, as minisign reads them.
        #expect(try Minisign.signatures(parsing: good.replacingOccurrences(of: "\n", with: "\r\n")).count == 1)
    }

    /// A key's id is not part of what it signs: the holder of one secret key can
    /// write its signature under any id. The same public key listed under two ids
    /// (a copied .pub with another id, or a rotation naming it twice) must count once,
    /// or one signer meets a threshold of two.
    @Test func oneKeyUnderTwoIDsCountsOnce() throws {
        let setup = Setup()
        func rebase(_ line: Substring, id: [UInt8]) -> String {
            var bytes = [UInt8](Data(base64Encoded: String(line))!)
            bytes.replaceSubrange(2 ..< 10, with: id)
            return Data(bytes).base64EncodedString()
        }
        let alias: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        let keyLine = setup.keys[0].publicKeyText.split(separator: "\n").last!
        let aliasKey = try Minisign.PublicKey(parsing: rebase(keyLine, id: alias))
        #expect(aliasKey.key == setup.publicKeys[0].key && aliasKey.keyID != setup.publicKeys[0].keyID)
        let block = try setup.signature(by: 0).split(separator: "\n")
        let aliased = ([block[0], Substring(rebase(block[1], id: alias))] + block[2...]).joined(separator: "\n")
        let signatures = try Minisign.signatures(parsing: setup.signature(by: 0) + aliased + "\n")
        let found = Minisign.signers(of: setup.contents, signatures: signatures, keys: [setup.publicKeys[0], aliasKey])
        #expect(found.keys.count == 1, "\(found)")
        // Two really distinct keys still count twice.
        let two = try Minisign.signatures(parsing: setup.signature(by: 0) + aliased + "\n" + setup.signature(by: 1))
        #expect(Minisign.signers(of: setup.contents, signatures: two, keys: [setup.publicKeys[0], aliasKey, setup.publicKeys[1]]).keys.count == 2)
    }

    @Test func sha256OfBytes() {
        #expect(Minisign.sha256(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}

import OverseerCore
import Testing

/// When a program's SHA-256 may be reused: every field of the stamp the same,
/// and never for a file young enough to share a clock tick with its hash.
@Suite struct BinaryHashCacheTests {
    typealias Stamp = BinaryHashCache.FileStamp
    static let second: Int64 = 1_000_000_000
    static let began: Int64 = 1_800_000_000 * second
    static let old = Stamp(device: 2049, inode: 1234, size: 52_428_800,
                           modified: began - 3600 * second, changed: began - 60 * second)
    static let hashA = String(repeating: "a", count: 64)
    static let hashB = String(repeating: "b", count: 64)

    static func recorded(_ stamp: Stamp = old, hash: String = hashA) -> BinaryHashCache {
        var cache = BinaryHashCache()
        let kept = cache.record(path: "/srv/app", sha256: hash, stampBefore: stamp, stampAfter: stamp, hashingBegan: began)
        #expect(kept)
        return cache
    }

    @Test func anUnchangedFileGetsItsRecordedHash() {
        #expect(Self.recorded().sha256(for: Self.old) == Self.hashA)
    }

    @Test(arguments: ["device", "inode (file replaced)", "size (truncated or grown)", "mtime",
                      "ctime (written in place, mtime set back)"])
    func anyChangeInTheStampMeansHashingAgain(field: String) {
        var stamp = Self.old
        switch field {
        case "device": stamp.device += 1
        case "inode (file replaced)": stamp.inode += 1
        case "size (truncated or grown)": stamp.size -= 1
        case "mtime": stamp.modified += 1
        default: stamp.changed += 1
        }
        #expect(Self.recorded().sha256(for: stamp) == nil, "changed \(field)")
    }

    @Test func theRacyWindowIsExclusiveForMtimeAndCtime() {
        let edge = Self.began - BinaryHashCache.racyWindow
        var stamp = Self.old
        stamp.modified = edge - 1
        stamp.changed = edge - 1
        #expect(BinaryHashCache.isSettled(stamp, hashingBegan: Self.began))
        stamp.changed = edge
        #expect(!BinaryHashCache.isSettled(stamp, hashingBegan: Self.began), "ctime at the edge")
        stamp.changed = edge - 1
        stamp.modified = edge
        #expect(!BinaryHashCache.isSettled(stamp, hashingBegan: Self.began), "mtime at the edge")
        // An mtime set far back (touch -d, an installer's timestamp) does not settle a fresh ctime.
        stamp.modified = 0
        stamp.changed = Self.began - 1
        #expect(!BinaryHashCache.isSettled(stamp, hashingBegan: Self.began))
    }

    @Test func aYoungFileIsNotRecordedAndDropsItsOldEntry() {
        var cache = Self.recorded()
        var young = Self.old
        young.changed = Self.began - 1
        let kept = cache.record(path: "/srv/app", sha256: Self.hashB, stampBefore: young, stampAfter: young, hashingBegan: Self.began)
        #expect(!kept)
        #expect(cache.entry == nil)
        #expect(cache.sha256(for: young) == nil)
        #expect(cache.encoded == nil)
    }

    @Test func aFileThatChangedWhileItWasReadIsNotRecorded() {
        var cache = BinaryHashCache()
        var after = Self.old
        after.size += 4096
        let kept = cache.record(path: "/srv/app", sha256: Self.hashA, stampBefore: Self.old, stampAfter: after, hashingBegan: Self.began)
        #expect(!kept)
        #expect(cache.sha256(for: Self.old) == nil)
        #expect(cache.sha256(for: after) == nil)
    }

    @Test func theSameHashAgainNeedsNoWrite() {
        var cache = Self.recorded()
        let kept = cache.record(path: "/srv/app", sha256: Self.hashA, stampBefore: Self.old, stampAfter: Self.old, hashingBegan: Self.began)
        #expect(!kept)
        #expect(cache.sha256(for: Self.old) == Self.hashA)
    }

    @Test func badHashesAndPathsAreNotRecorded() {
        for (path, hash) in [("/srv/app", "A" + String(Self.hashA.dropFirst())), ("/srv/app", "abc"),
                             ("relative/app", Self.hashA), ("/srv/line\nbreak", Self.hashA)] {
            var cache = BinaryHashCache()
            let kept = cache.record(path: path, sha256: hash, stampBefore: Self.old, stampAfter: Self.old, hashingBegan: Self.began)
            #expect(!kept)
            #expect(cache.entry == nil)
        }
    }

    @Test func aVouchedHashIsUsedButNeverWritten() {
        var cache = BinaryHashCache()
        var fresh = Self.old
        fresh.changed = Self.began
        cache.vouch(path: "/srv/app", sha256: Self.hashB, stamp: fresh)
        #expect(cache.sha256(for: fresh) == Self.hashB)
        #expect(cache.isVouched)
        #expect(cache.encoded == nil)
        // Hashed later, once settled: written from then on, even with the same hash.
        let kept = cache.record(path: "/srv/app", sha256: Self.hashB, stampBefore: Self.old, stampAfter: Self.old, hashingBegan: Self.began)
        #expect(kept)
        #expect(!cache.isVouched)
        #expect(cache.encoded != nil)
    }

    @Test func theFileRoundTrips() throws {
        let cache = Self.recorded()
        let text = try #require(cache.encoded)
        #expect(text.hasPrefix("overseerd-binary-id 1\n"))
        #expect(try BinaryHashCache(parsing: text) == cache)
        let spaced = BinaryHashCache(entry: .init(path: "/srv/my app/bin", stamp: Self.old, sha256: Self.hashA))
        #expect(try BinaryHashCache(parsing: try #require(spaced.encoded)) == spaced)
    }

    @Test(arguments: [
        "",
        "overseerd-state 1\n",
        "overseerd-binary-id 1\n",
        "overseerd-binary-id 2\n2049 1234 5 6 7 \(String(repeating: "a", count: 64)) /srv/app\n",
        "overseerd-binary-id 1\n2049 1234 5 6 7 \(String(repeating: "a", count: 64)) /srv/app",
        "overseerd-binary-id 1\n2049 1234 5 6 7 \(String(repeating: "a", count: 64)) /srv/app\nextra\n",
        "overseerd-binary-id 1\n2049 1234 -5 6 7 \(String(repeating: "a", count: 64)) /srv/app\n",
        "overseerd-binary-id 1\nx 1234 5 6 7 \(String(repeating: "a", count: 64)) /srv/app\n",
        "overseerd-binary-id 1\n2049 1234 5 6 7 \(String(repeating: "g", count: 64)) /srv/app\n",
        "overseerd-binary-id 1\n2049 1234 5 6 7 \(String(repeating: "a", count: 64)) srv/app\n",
        "overseerd-binary-id 1\n2049 1234 5 6 \(String(repeating: "a", count: 64)) /srv/app\n",
        "overseerd-binary-id 1\n2049 1234 5 6 7 \(String(repeating: "a", count: 64)) /" + String(repeating: "x", count: 8200) + "\n",
    ])
    func aDamagedFileIsRefused(text: String) {
        #expect(throws: ConfigurationError.self) { try BinaryHashCache(parsing: text) }
    }

    @Test func fileNamesAreStableAndDifferPerProgram() {
        let name = BinaryHashCache.fileName(for: "/srv/app")
        #expect(name == BinaryHashCache.fileName(for: "/srv/app"))
        #expect(name != BinaryHashCache.fileName(for: "/srv/app2"))
        #expect(name.hasPrefix("binary-id-"))
        #expect(name.count == "binary-id-".count + 16)
        #expect(name.dropFirst("binary-id-".count).allSatisfy { $0.isHexDigit && !$0.isUppercase })
    }

    @Test func theCacheLivesInTheStateDirectoryElseBesideTheControlSocket() {
        var configuration = Configuration(program: "/srv/app")
        #expect(configuration.binaryHashCacheDirectory == nil, "no control socket, no state directory: in memory only")
        configuration.controlSocket = "/run/user/1000/overseerd/overseerd.sock"
        #expect(configuration.binaryHashCacheDirectory == "/run/user/1000/overseerd")
        configuration.controlSocket = "/overseerd.sock"
        #expect(configuration.binaryHashCacheDirectory == "/")
        configuration.stateDirectory = "/var/lib/app"
        #expect(configuration.binaryHashCacheDirectory == "/var/lib/app")
    }

    /// A full disk under --state-directory: the advice is not to give one.
    @Test func theAdviceOnAFailedWriteFitsWhetherAStateDirectoryWasGiven() {
        #expect(BinaryHashCache.unsavedAdvice(stateDirectory: nil).contains("give --state-directory"))
        let given = BinaryHashCache.unsavedAdvice(stateDirectory: "/var/lib/app")
        #expect(!given.contains("give --state-directory") && given.contains("/var/lib/app"))
    }
}

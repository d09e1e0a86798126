#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerSystem
import OverseerTestSupport
import Testing

/// OVERSEER_BINARY_ID across overseerd's own restarts: a start reuses the hash
/// its previous start kept in the state directory while the program file is
/// unchanged, and hashes it again the moment it is not, even when written in
/// place with its size and mtime kept.
@Suite struct BinaryHashCacheTests {
    /// A program the tests can change in place without breaking it: a script
    /// that runs the test child, with a padding line of fixed size.
    static func writeProgram(_ path: String, padding: String) throws {
        try "#!/bin/sh\n# \(padding)\nexec \(Binaries.testChild) \"$@\"\n".write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o755)
    }

    /// A scratch directory with a private state directory and the program in it.
    static func prepare() throws -> (ScratchDirectory, state: String, program: String) {
        let scratch = ScratchDirectory()
        let state = scratch.file("state")
        mkdir(state, 0o700)
        let program = scratch.file("app")
        try writeProgram(program, padding: "AAAAAAAA")
        return (scratch, state, program)
    }

    /// The cache keeps only files older than the racy window when hashed: wait until `path` is.
    static func waitUntilSettled(_ path: String) throws {
        let stamp = try #require(BinaryIdentity.stamp(ofFileAt: path))
        let settled = Double(max(stamp.modified, stamp.changed) + BinaryHashCache.racyWindow) / 1e9 + 0.1
        let wait = settled - Date().timeIntervalSince1970
        if wait > 0 { usleep(UInt32(wait * 1e6)) }
    }

    /// One start: the OVERSEER_BINARY_ID the child saw, and overseerd's log.
    static func start(_ program: String, state: String, scratch: ScratchDirectory, name: String) throws -> (id: String?, log: String) {
        let report = scratch.file("report-\(name)")
        let run = try RunningProcess.overseerd(["--log-level", "debug", "--state-directory", state, "--", program],
                                               environment: ["OTC_REPORT": report])
        let values = try ChildReport.read(report)
        _ = try run.waitForLine(containing: "generation 1 started")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
        return (values["env.OVERSEER_BINARY_ID"], run.stderrText)
    }

    @Test func aSecondStartReusesTheHashAndAChangeInPlaceIsHashedAgain() throws {
        let (scratch, state, program) = try Self.prepare()
        let original = try sha256sum(program)
        try Self.waitUntilSettled(program)

        let first = try Self.start(program, state: state, scratch: scratch, name: "1")
        #expect(first.id == original)
        #expect(first.log.contains("hashed \(program) for OVERSEER_BINARY_ID"))
        let cacheFile = state + "/" + BinaryHashCache.fileName(for: program)
        let saved = try String(contentsOfFile: cacheFile, encoding: .utf8)
        #expect(saved.contains(original), "the first start keeps the hash")

        let second = try Self.start(program, state: state, scratch: scratch, name: "2")
        #expect(second.id == original)
        #expect(second.log.contains("taken from \(cacheFile)"), "the second start reads no program bytes:\n\(second.log)")
        #expect(!second.log.contains("hashed \(program)"))

        // Same size, same mtime (set back as `touch -d` would): only ctime tells.
        let before = try #require(BinaryIdentity.stamp(ofFileAt: program))
        let fd = open(program, O_WRONLY)
        #expect(fd >= 0)
        let bytes = Array("BBBBBBBB".utf8)
        #expect(pwrite(fd, bytes, bytes.count, 12) == bytes.count)
        close(fd)
        var times = [timespec(tv_sec: Int(before.modified / 1_000_000_000), tv_nsec: Int(before.modified % 1_000_000_000)),
                     timespec(tv_sec: Int(before.modified / 1_000_000_000), tv_nsec: Int(before.modified % 1_000_000_000))]
        #expect(utimensat(AT_FDCWD, program, &times, 0) == 0)
        let after = try #require(BinaryIdentity.stamp(ofFileAt: program))
        #expect(after.size == before.size && after.modified == before.modified && after.inode == before.inode)
        let changed = try sha256sum(program)
        #expect(changed != original)

        let third = try Self.start(program, state: state, scratch: scratch, name: "3")
        #expect(third.id == changed, "the child sees the file's true SHA-256, not the kept one")
        #expect(third.log.contains("hashed \(program) for OVERSEER_BINARY_ID"))
        #expect(!third.log.contains("taken from"))
    }

    /// A cache file that is not overseerd's own private one is never used, even
    /// when its entry names the program's exact stamp: one warning, and the
    /// program is hashed. Nothing blocks on a FIFO.
    @Test(arguments: ["fifo", "symlink", "world-writable", "garbage", "huge", "foreign-owner", "open-directory"])
    func aHostileCacheFileIsIgnored(kind: String) throws {
        if kind == "foreign-owner", geteuid() != 0 { return }
        let (scratch, state, program) = try Self.prepare()
        let truth = try sha256sum(program)
        let stamp = try #require(BinaryIdentity.stamp(ofFileAt: program))
        let forged = try #require(BinaryHashCache(entry: .init(path: program, stamp: stamp,
                                                               sha256: String(repeating: "0", count: 64))).encoded)
        let cacheFile = state + "/" + BinaryHashCache.fileName(for: program)
        let expected: String
        switch kind {
        case "fifo":
            #expect(mkfifo(cacheFile, 0o600) == 0)
            expected = "is not a regular file"
        case "symlink":
            let elsewhere = scratch.file("elsewhere")
            try forged.write(toFile: elsewhere, atomically: false, encoding: .utf8)
            chmod(elsewhere, 0o600)
            #expect(symlink(elsewhere, cacheFile) == 0)
            expected = "is a symbolic link"
        case "world-writable":
            try forged.write(toFile: cacheFile, atomically: false, encoding: .utf8)
            chmod(cacheFile, 0o666)
            expected = "others can write it"
        case "garbage":
            try "#!/bin/sh\nrm -rf /\n".write(toFile: cacheFile, atomically: false, encoding: .utf8)
            chmod(cacheFile, 0o600)
            expected = "not an overseerd binary-id cache"
        case "huge":
            try (forged + String(repeating: "x", count: 1 << 20)).write(toFile: cacheFile, atomically: false, encoding: .utf8)
            chmod(cacheFile, 0o600)
            expected = "over \(BinaryHashCache.maximumFileSize)"
        case "open-directory":
            try forged.write(toFile: cacheFile, atomically: false, encoding: .utf8)
            chmod(cacheFile, 0o600)
            chmod(state, 0o777)
            expected = "\(state) has mode 777: others can write it"
        default:
            try forged.write(toFile: cacheFile, atomically: false, encoding: .utf8)
            chmod(cacheFile, 0o600)
            #expect(chown(cacheFile, 65534, 65534) == 0)
            expected = "owned by uid 65534"
        }
        let run = try Self.start(program, state: state, scratch: scratch, name: kind)
        #expect(run.id == truth)
        let warnings = run.log.split(separator: "\n").filter { $0.contains("warning:") && $0.contains(state) }
        #expect(warnings.count == 1, "one warning:\n\(run.log)")
        #expect(warnings.first?.contains(expected) == true, "\(warnings)")
        #expect(run.log.contains("hashed \(program) for OVERSEER_BINARY_ID"))
    }
}

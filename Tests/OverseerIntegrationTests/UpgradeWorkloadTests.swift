import Glibc
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// What upgrades cost the daemon: no memory kept per candidate, and no time
/// taken from the event loop while a large one is copied and hashed.
@Suite struct UpgradeWorkloadTests {
    /// overseerd's anonymous memory (RssAnon), in kB.
    static func anonymousMemory(of pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("RssAnon:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
    }

    /// Every start check's helper used to stay in memory for good (a retain
    /// cycle through its completion): 150 rejected candidates printing 60 KB
    /// each grew overseerd by 9.7 MB. Now the growth must stay under 2 MB.
    @Test func rejectedCandidatesLeaveNoMemoryBehind() throws {
        let deployment = try UpgradeTests.Deployment()
        let (run, _, _) = try deployment.start([])
        let pid = run.process.pid
        func reject(_ index: Int) throws {
            let seen = run.stderrText.split(separator: "\n").count
            try deployment.deploy(Data("#!/bin/sh\nhead -c 61440 /dev/zero | tr '\\0' x\nexit 1\n# \(index)\n".utf8))
            try run.waitForLine(containing: "upgrade rejected", after: seen)
        }
        for index in 0 ..< 20 { try reject(index) }
        let before = try Self.anonymousMemory(of: pid)
        for index in 20 ..< 170 { try reject(index) }
        let after = try Self.anonymousMemory(of: pid)
        print("overseerd RssAnon over 150 rejected candidates printing 60 KB: \(before) kB -> \(after) kB (\(after - before) kB)")
        #expect(after - before < 2048, "grew by \(after - before) kB")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// A 400 MB candidate is copied and hashed on a thread of its own: a
    /// SIGUSR2 sent meanwhile is acted on at once (it used to wait 2.7 s for
    /// the copy), and so is a control request.
    @Test func largeCandidateDoesNotHoldUpTheLoop() throws {
        let deployment = try UpgradeTests.Deployment()
        let (run, _, _) = try deployment.start([])
        // A script that fails its start check at once, padded to 400 MB (sparse: cheap to make, not to copy).
        let candidate = deployment.scratch.file("deploy/.big.tmp")
        try Data("#!/bin/sh\nexit 1\n".utf8).write(to: URL(fileURLWithPath: candidate))
        try #require(truncate(candidate, 400 << 20) == 0)
        chmod(candidate, 0o755)
        let seen = run.stderrText.split(separator: "\n").count
        try #require(rename(candidate, deployment.deployPath) == 0)
        usleep(30_000)
        let sent = Date()
        run.signal(SIGUSR2)
        try run.waitForLine(containing: "restart (SIGUSR2", after: seen)
        let latency = Date().timeIntervalSince(sent)
        // The copy and hash of 400 MB take over a second here: it must still be under way.
        let copying = run.lines(containing: "new binary").isEmpty
        print("SIGUSR2 acted on \(Int(latency * 1000)) ms after it was sent, while the candidate was \(copying ? "still being copied" : "already copied")")
        #expect(latency < 0.1, "\(Int(latency * 1000)) ms")
        #expect(copying, "the copy ended before the signal was handled: the test proves nothing")
        try run.waitForLine(containing: "upgrade rejected", timeout: 60)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// `--subreaper` outside a container: the child's orphans come to overseerd,
/// which reaps and counts them as it does as PID 1. Needs no root.
@Suite struct SubreaperTests {
    @Test func orphansOfTheChildAreReapedAndCounted() throws {
        let scratch = ScratchDirectory()
        let container = try Container(["--subreaper", "--ready", "delay:0s", "--", try ContainerInitTests.orphanMaker(scratch, count: 20)],
                                      asInit: false)
        try container.event("reaping_orphans")
        try container.run.waitForLine(containing: "orphans made 20", in: .stdout)
        var reaped: Int?
        let deadline = Date().addingTimeInterval(10)
        repeat {
            reaped = try container.status()["orphans_reaped"] as? Int
        } while reaped != 20 && Date() < deadline
        #expect(reaped == 20)
        #expect(container.zombies().isEmpty)
        container.run.signal(SIGTERM)
        #expect(try container.run.waitForExit() == .killed(signal: SIGTERM))
    }

    /// Without it (and not PID 1), nothing changes: orphans go to init, and status says null.
    @Test func withoutItOverseerdReapsNoOrphans() throws {
        let container = try Container(["--ready", "delay:0s", "--", "/bin/sleep", "100"], asInit: false)
        try container.event("generation_ready", generation: 1)
        #expect(try container.status()["orphans_reaped"] is NSNull)
        #expect(container.events("reaping_orphans").isEmpty)
        container.run.signal(SIGTERM)
        _ = try container.run.waitForExit()
    }
}

@testable import OverseerCore
import Testing

@Suite struct LeftoverCleanupTests {
    @Test func aWorkersLeftoversAreHeldUnderItsInstanceAndNamedByItsGenerationAndSlot() {
        var cleanup = LeftoverCleanup(grace: .seconds(1))
        let owner = LeftoverCleanup.Owner(generation: 1, worker: 1)
        let actions = cleanup.handle(.left(key: 2, owner: owner, leader: 100, pids: [101]))
        guard case let .log(line) = actions.first else { Issue.record("no log line: \(actions)"); return }
        #expect(line.event == .leftoversFound)
        #expect(line.generation == 1)
        #expect(line.message.hasPrefix("worker 1 of generation 1 (pid 100) exited and left 1 process(es)"), "\(line.message)")
        #expect(actions.last == .startGrace(key: 2, after: .seconds(1)))
        #expect(cleanup.handle(.graceEnded(key: 1)).isEmpty, "generation 1 left nothing of its own")
        #expect(cleanup.handle(.graceEnded(key: 2)) == [.kill(key: 2, owner: owner)])
        #expect(cleanup.isEmpty)
    }

    @Test func oneChildsLeftoversAreNamedByItsGeneration() {
        var cleanup = LeftoverCleanup(grace: .seconds(1))
        let actions = cleanup.handle(.left(key: 3, owner: .init(generation: 3), leader: 100, pids: [101, 102]))
        guard case let .log(line) = actions.first else { Issue.record("no log line: \(actions)"); return }
        #expect(line.message.hasPrefix("generation 3 (pid 100) exited and left 2 process(es)"), "\(line.message)")
        #expect(cleanup.handle(.exiting) == [.kill(key: 3, owner: .init(generation: 3))])
        #expect(cleanup.handle(.graceEnded(key: 3)).isEmpty)
    }
}

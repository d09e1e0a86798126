import Glibc
@testable import OverseerCore
import Testing

/// `OrphanReaping`: step by step, then against a model of the kernel's child
/// list with generations, helpers and orphans exiting in random order and
/// pids reused, checking that no owned status is ever taken by the sweep.
@Suite struct OrphanReapingTests {
    @Test func anOrphanIsReapedAndCounted() {
        var machine = OrphanReaping()
        machine.sweepStarted()
        #expect(machine.peeked(40, owner: .none) == .reap(pid: 40))
        let line = machine.reaped(pid: 40, exit: .exited(0))
        #expect(line.event == .orphanReaped && line.level == .debug)
        #expect(machine.peeked(nil, owner: .none) == .done)
        #expect(machine.reaped == 1)
    }

    @Test func anOwnedZombieGoesToItsOwnerOnceASweep() {
        var machine = OrphanReaping()
        machine.sweepStarted()
        #expect(machine.peeked(7, owner: .generation(2)) == .handOver(pid: 7, to: .generation(2)))
        // Still there: its owner could not take it now; the sweep ends instead of spinning.
        #expect(machine.peeked(7, owner: .generation(2)) == .done)
        machine.sweepStarted()
        #expect(machine.peeked(7, owner: .generation(2)) == .handOver(pid: 7, to: .generation(2)))
        #expect(machine.peeked(9, owner: .helper) == .handOver(pid: 9, to: .helper))
        #expect(machine.reaped == 0)
    }

    @Test func aSweepYieldsAfterItsSteps() {
        var machine = OrphanReaping()
        machine.sweepStarted()
        for pid in 1 ... Int32(OrphanReaping.stepsPerSweep) {
            #expect(machine.peeked(pid + 100, owner: .none) == .reap(pid: pid + 100))
        }
        #expect(machine.peeked(5000, owner: .none) == .continueLater)
        machine.sweepStarted()
        #expect(machine.peeked(5000, owner: .none) == .reap(pid: 5000))
    }

    /// The kernel's children of overseerd, in list order (a peek finds the first exited one).
    struct Kernel {
        struct Process { let pid: Int32; let owner: OrphanReaping.Owner; var exit: ProcessExit? }
        var children: [Process] = []
        var freePIDs: [Int32] = Array(2 ... 40)

        mutating func start(_ owner: OrphanReaping.Owner, rng: inout SplitMix64) -> Int32? {
            guard !freePIDs.isEmpty else { return nil }
            let pid = freePIDs.remove(at: Int.random(in: 0 ..< freePIDs.count, using: &rng))
            children.append(Process(pid: pid, owner: owner, exit: nil))
            return pid
        }

        func peek() -> Int32? { children.first { $0.exit != nil }?.pid }

        /// waitid(P_PID): takes the status, frees the pid.
        mutating func reap(_ pid: Int32) -> ProcessExit? {
            guard let index = children.firstIndex(where: { $0.pid == pid }), let exit = children[index].exit else { return nil }
            children.remove(at: index)
            freePIDs.append(pid)
            return exit
        }
    }

    @Test(arguments: 0 ..< 200)
    func noOwnedStatusIsEverTakenAndNoZombieStays(seed: Int) {
        var rng = SplitMix64(seed: UInt64(seed) &* 7919 &+ 13)
        var kernel = Kernel()
        var machine = OrphanReaping()
        // What each owner holds (pid → its true exit once it has one), and what it collected.
        var owned: [Int32: OrphanReaping.Owner] = [:]
        var trueExit: [Int: ProcessExit] = [:]
        var generationOf: [Int32: Int] = [:]
        var collected: [Int: ProcessExit] = [:]
        var nextGeneration = 1
        var orphansExited = 0
        var failures: [String] = []

        func ownerOf(_ pid: Int32?) -> OrphanReaping.Owner {
            guard let pid else { return .none }
            return owned[pid] ?? .none
        }
        /// The owner's own reap (its pidfd, or the sweep handing it over).
        func ownerReaps(_ pid: Int32) {
            guard let owner = owned[pid], let exit = kernel.reap(pid) else { return }
            owned[pid] = nil
            if case let .generation(generation) = owner {
                collected[generation] = exit
                generationOf[pid] = nil
            }
        }
        func sweep(ownersWilling: Bool) {
            machine.sweepStarted()
            while true {
                let pid = kernel.peek()
                switch machine.peeked(pid, owner: ownerOf(pid)) {
                case let .reap(pid):
                    if owned[pid] != nil { failures.append("seed \(seed): the sweep reaped owned pid \(pid)") }
                    if let exit = kernel.reap(pid) { _ = machine.reaped(pid: pid, exit: exit) }
                case let .handOver(pid, _):
                    if ownersWilling { ownerReaps(pid) }
                case .done:
                    return
                case .continueLater:
                    machine.sweepStarted()
                }
            }
        }

        for _ in 0 ..< 400 {
            switch Int.random(in: 0 ..< 10, using: &rng) {
            case 0, 1:
                // A generation or a helper is spawned (on the loop: owned from its first instant).
                let owner: OrphanReaping.Owner = Bool.random(using: &rng) ? .generation(nextGeneration) : .helper
                if let pid = kernel.start(owner, rng: &rng) {
                    owned[pid] = owner
                    if case .generation = owner { generationOf[pid] = nextGeneration; nextGeneration += 1 }
                }
            case 2, 3:
                // A grandchild is reparented to overseerd.
                _ = kernel.start(.none, rng: &rng)
            case 4, 5, 6:
                // Someone exits, perhaps several at the same instant.
                for _ in 0 ..< Int.random(in: 1 ... 3, using: &rng) {
                    let running = kernel.children.indices.filter { kernel.children[$0].exit == nil }
                    guard let index = running.randomElement(using: &rng) else { break }
                    let exit: ProcessExit = Bool.random(using: &rng) ? .exited(Int32.random(in: 0 ... 255, using: &rng)) : .killed(signal: Int32.random(in: 1 ... 31, using: &rng))
                    kernel.children[index].exit = exit
                    if let generation = generationOf[kernel.children[index].pid] { trueExit[generation] = exit }
                    if owned[kernel.children[index].pid] == nil { orphansExited += 1 }
                }
            case 7, 8:
                // SIGCHLD: a sweep; owners may or may not take theirs when handed over.
                sweep(ownersWilling: Int.random(in: 0 ..< 4, using: &rng) != 0)
            default:
                // A pidfd wakes its owner.
                if let zombie = kernel.children.filter({ $0.exit != nil && owned[$0.pid] != nil }).randomElement(using: &rng) {
                    ownerReaps(zombie.pid)
                }
            }
        }
        // Everyone ends; the pidfds and SIGCHLD come.
        for index in kernel.children.indices where kernel.children[index].exit == nil {
            kernel.children[index].exit = .exited(0)
            if let generation = generationOf[kernel.children[index].pid] { trueExit[generation] = .exited(0) }
            if owned[kernel.children[index].pid] == nil { orphansExited += 1 }
        }
        sweep(ownersWilling: true)

        #expect(failures.isEmpty, "\(failures.prefix(3))")
        #expect(kernel.children.isEmpty, "seed \(seed): zombies left: \(kernel.children.map(\.pid))")
        #expect(collected == trueExit, "seed \(seed): a generation's status was lost or wrong")
        #expect(machine.reaped == orphansExited, "seed \(seed): \(machine.reaped) reaped, \(orphansExited) orphans exited")
    }
}

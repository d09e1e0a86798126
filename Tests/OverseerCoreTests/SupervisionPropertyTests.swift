import Glibc
@testable import OverseerCore
import Testing

/// SplitMix64: small, fast, and the same sequence for the same seed everywhere.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Drives `Supervision` with random but possible event sequences: a model of
/// the processes and timers the daemon would have, fed back as events the way
/// the daemon feeds them (a spawn's result comes right after `spawnChild`).
/// Mixed in are events a real system also produces: READY=1 and timers for
/// generations that are gone or stopping, exits and READY=1 for unknown ones.
@Suite struct SupervisionPropertyTests {
    struct World {
        var machine: Supervision
        var rng: SplitMix64
        /// Spawned and not yet reaped.
        var alive: Set<Int> = []
        /// `spawnChild` done, result not yet fed.
        var spawning: [Int] = []
        var timers: Set<Supervision.Timer> = []
        var lastGeneration = 0
        var restartRequests = 0
        var stopRequested = false
        var stoppingReported = false
        var exitedWith: ProcessExit?
        /// Every status overseerd may leave with: a child's, 69, a spawn failure's code.
        var possibleStatuses: [ProcessExit] = [.exited(OverseerExitCode.notReady)]
        var trace: [String] = []
        /// The metrics the daemon reads off the same events, one millisecond apart.
        var metrics = RestartMetrics()
        var clock: Int64 = 0
        var exitsFed: UInt64 = 0
        var restartsEnded: UInt64 = 0
        /// The program file's hash; the rollback asked for and not yet ended.
        var onDisk = String(repeating: "a", count: 64)
        var rollingBackTo: BinaryLife.Release?
        var releases = 0
        /// A box, so that `check` does not need exclusive access to the world it looks at.
        final class Failures { var list: [String] = [] }
        let failures = Failures()

        func check(_ condition: Bool, _ message: @autoclosure () -> String = "invariant") {
            if !condition { failures.list.append(message()) }
        }

        init(seed: UInt64, settings: Supervision.Settings) {
            machine = Supervision(settings: settings)
            rng = SplitMix64(seed: seed)
        }

        mutating func pick<T>(_ values: [T]) -> T { values[Int.random(in: 0 ..< values.count, using: &rng)] }

        mutating func randomExit() -> ProcessExit {
            pick([.exited(0), .exited(1), .exited(2), .killed(signal: SIGTERM), .killed(signal: SIGKILL), .exited(42)])
        }

        mutating func nextEvent() -> Supervision.Event {
            if !spawning.isEmpty {
                let generation = spawning.removeFirst()
                if Int.random(in: 0 ..< 10, using: &rng) == 0 {
                    let code = pick([Int32(71), 126, 127])
                    possibleStatuses.append(.exited(code))
                    return .childSpawnFailed(generation: generation, exitCode: code, reason: "cannot start")
                }
                alive.insert(generation)
                return .childSpawned(generation: generation, binary: onDisk)
            }
            if let target = rollingBackTo, Int.random(in: 0 ..< 4, using: &rng) == 0 {
                return .binaryLife(.rollbackFinished(restored: target.sha256, failure: nil))
            }
            while true {
                switch Int.random(in: 0 ..< 100, using: &rng) {
                case 0 ..< 20:
                    guard let generation = alive.sorted().randomElement(using: &rng) else { continue }
                    return .childReady(generation: generation)
                case 20 ..< 32:
                    guard let generation = alive.sorted().randomElement(using: &rng) else { continue }
                    alive.remove(generation)
                    let exit = randomExit()
                    possibleStatuses.append(exit)
                    return .childExited(generation: generation, exit)
                case 32 ..< 55:
                    guard let timer = timers.sorted(by: { "\($0)" < "\($1)" }).randomElement(using: &rng) else { continue }
                    timers.remove(timer)
                    return .timerFired(timer)
                case 55 ..< 60:
                    // A timer that is not (or no longer) armed.
                    let generation = Int.random(in: 1 ... lastGeneration + 2, using: &rng)
                    return .timerFired(pick([.readyTimeout(generation: generation), .readyDelay(generation: generation),
                                             .stopTimeout(generation: generation), .trialWindow]))
                case 60 ..< 63:
                    return .childReady(generation: Int.random(in: 1 ... lastGeneration + 2, using: &rng))
                case 63 ..< 65:
                    // An exit of a generation that does not exist (any more).
                    let generation = lastGeneration + 1 + Int.random(in: 0 ... 3, using: &rng)
                    return .childExited(generation: generation, .exited(0))
                case 65 ..< 85:
                    restartRequests += 1
                    return .restartRequested(reason: "random")
                case 85 ..< 87:
                    // A verified release is installed (and usually restarted into), or the rollback asked for ends.
                    if let target = rollingBackTo {
                        return .binaryLife(.rollbackFinished(restored: target.sha256, failure: nil))
                    }
                    releases += 1
                    return .binaryLife(.installing(.init(sha256: String(String(repeating: "b", count: 64) + String(releases)).suffix(64).description)))
                case 87 ..< 89:
                    stopRequested = true
                    return .stopRequested(signal: pick([SIGTERM, SIGINT]))
                default:
                    return .signalReceived(pick([SIGHUP, SIGUSR1]))
                }
            }
        }

        /// Feeds one event, checks the actions and the invariants. Returns false once overseerd has exited.
        mutating func step(_ event: Supervision.Event) -> Bool {
            let servingBefore = machine.serving
            let actions = machine.handle(event)
            trace.append("\(event) -> \(actions)")
            clock += 1_000_000
            metrics.observe(event, actions: actions, restartQueued: machine.restartQueued, now: clock)
            if case .childExited = event { exitsFed += 1 }
            if case let .binaryLife(.installing(release)) = event, machine.binaryLife.installed == release { onDisk = release.sha256 }
            if case let .binaryLife(.rollbackFinished(restored?, _)) = event {
                onDisk = restored
                rollingBackTo = nil
                // Stands for the restart a rollback is.
                restartRequests += 1
            }
            restartsEnded += UInt64(actions.filter { if case .report(.ready(_, _?)) = $0 { true } else { false } }.count)
            for (index, action) in actions.enumerated() {
                switch action {
                case let .spawnChild(generation):
                    let inOrder = generation == lastGeneration + 1
                    check(inOrder, "generations are numbered in order")
                    let notStopping = !stopRequested && !stoppingReported
                    check(notStopping, "no new child once stopping")
                    lastGeneration = generation
                    spawning.append(generation)
                case let .signalChild(generation, _), let .killGeneration(generation):
                    let isAlive = alive.contains(generation)
                    check(isAlive, "signal for generation \(generation), which is not running")
                case let .startTimer(timer, _):
                    let isAlive = timer.generation.map { alive.contains($0) } ?? true
                    check(isAlive, "timer for generation \(String(describing: timer.generation)), which is not running")
                    timers.insert(timer)
                case let .cancelTimer(timer):
                    timers.remove(timer)
                case let .report(state):
                    if state == .stopping { stoppingReported = true }
                    if case let .ready(generation, _) = state {
                        let serving = machine.serving
                        check(serving == generation, "reported ready: \(generation), serving: \(String(describing: serving))")
                    }
                case let .exit(status):
                    check(index == actions.count - 1, ".exit is the last action")
                    let running = alive
                    check(running.isEmpty && spawning.isEmpty, "exit with children still running: \(running)")
                    let possible = possibleStatuses.contains(status)
                    check(possible, "exit status \(status) comes from nowhere")
                    exitedWith = status
                case let .rollBack(target, _):
                    check(rollingBackTo == nil, "a second rollback while one runs")
                    rollingBackTo = target
                case .log, .persistState:
                    break
                }
            }
            if exitedWith != nil { return false }
            checkInvariants(servingBefore: servingBefore, actions: actions)
            return true
        }

        func checkInvariants(servingBefore: Int?, actions: [Supervision.Action]) {
            let live = machine.liveGenerations
            // The machine's generations are exactly the processes that exist (or are being spawned).
            check(Set(live) == alive.union(spawning), "live \(live), alive \(alive), spawning \(spawning)")
            // At most one serving and one candidate; the rest are stopping.
            let active = live.filter { !machine.isStopping($0) }
            check(active.count <= 2, "\(active.count) generations not stopping")
            let roles = Set([machine.serving, machine.candidate].compactMap { $0 })
            check(Set(active).isSubset(of: roles), "\(active) not stopping, but neither serving nor candidate")
            let shuttingDown = stopRequested || stoppingReported
            if let candidate = machine.candidate {
                check(live.contains(candidate), "candidate \(candidate) is not live")
                check(shuttingDown || !machine.isStopping(candidate), "candidate \(candidate) is stopping")
                check(candidate != machine.serving, "candidate \(candidate) is also serving")
            }
            if let serving = machine.serving { check(live.contains(serving), "serving \(serving) is not live") }
            // Once asked to stop, every generation is stopping.
            if shuttingDown { check(active.isEmpty, "\(active) not stopping during shutdown") }
            else if rollingBackTo == nil { check(machine.serving != nil || machine.candidate != nil, "nothing serving or starting") }
            // Something is always left to wait for (a child, or the rollback), or overseerd would hang.
            check(!live.isEmpty || rollingBackTo != nil, "no child left and no exit")
            // Armed timers belong to running generations.
            check(timers.allSatisfy { $0.generation.map { alive.contains($0) } ?? true }, "timers left for gone generations: \(timers)")
            // Never more generations than the first plus one per restart request.
            check(lastGeneration <= 1 + restartRequests, "\(lastGeneration) generations for \(restartRequests) restart requests")
            // The metrics count every exit and every restart's end, time no more restarts than ended,
            // and keep nothing for generations that are gone.
            check(metrics.exitedWithStatus + metrics.killedBySignal == exitsFed, "exits counted \(metrics.exitedWithStatus)+\(metrics.killedBySignal), fed \(exitsFed)")
            check(metrics.succeeded + metrics.failed == restartsEnded, "restarts counted \(metrics.succeeded)+\(metrics.failed), ended \(restartsEnded)")
            check(metrics.restartDurations.count <= restartsEnded, "\(metrics.restartDurations.count) restart durations for \(restartsEnded) restarts")
            check(metrics.readyDurations.count <= UInt64(lastGeneration), "\(metrics.readyDurations.count) ready durations for \(lastGeneration) generations")
            check(metrics.generationsKept <= live.count, "metrics keep \(metrics.generationsKept) generations, \(live.count) live")
            // The serving generation is stopped only when another took over or overseerd is stopping.
            if let old = servingBefore, machine.isStopping(old), !stopRequested, !stoppingReported, rollingBackTo == nil {
                check(machine.serving != nil && machine.serving != old, "generation \(old) stopped with no successor")
            }
        }
    }

    static let settings: [Supervision.Settings] = [
        .init(readiness: .notify, readyTimeout: .seconds(5), stopSignal: SIGTERM, stopTimeout: .seconds(3)),
        .init(readiness: .delay(.seconds(1)), readyTimeout: .seconds(5), stopSignal: SIGQUIT, stopTimeout: .seconds(3)),
        .init(readiness: .notify, readyTimeout: .seconds(5), stopSignal: SIGTERM, stopTimeout: .seconds(3), probation: .seconds(30)),
    ]

    @Test(arguments: 0 ..< 3)
    func randomSequencesKeepTheInvariants(_ settingsIndex: Int) {
        var exits = 0
        var longest = 0
        for seed in UInt64(1) ... 400 {
            var world = World(seed: seed &* 7919 &+ UInt64(settingsIndex), settings: Self.settings[settingsIndex])
            _ = world.machine.handle(.binaryLife(.started(identified: world.onDisk)))
            var running = world.step(.started)
            var steps = 0
            while running, steps < 300 {
                let event = world.nextEvent()
                running = world.step(event)
                steps += 1
            }
            longest = max(longest, world.lastGeneration)
            if let status = world.exitedWith {
                exits += 1
                // After .exit, nothing overseerd does has an effect any more.
                for event in [Supervision.Event.restartRequested(reason: "late"), .childReady(generation: world.lastGeneration),
                              .signalReceived(SIGHUP), .timerFired(.readyTimeout(generation: world.lastGeneration))] {
                    let late = world.machine.handle(event)
                    world.check(late.allSatisfy { if case .log = $0 { true } else { false } }, "after exit(\(status)): \(late)")
                }
            }
            if !world.failures.list.isEmpty {
                Issue.record("seed \(seed): \(world.failures.list.joined(separator: "; "))\n\(world.trace.suffix(30).joined(separator: "\n"))")
                break
            }
        }
        // The walk is not stuck in one corner: runs end, and restarts happen.
        #expect(exits > 100)
        #expect(longest > 5)
    }
}

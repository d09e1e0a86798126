import Glibc
@testable import OverseerCore
import Testing

/// Deterministic simulation of the whole upgrade policy, the way FoundationDB
/// and TigerBeetle test theirs: one seed decides everything, so a failure
/// replays exactly.
///
/// What runs for real: `Supervision` with its `BinaryLife`, and the record's
/// codec (every persisted record is encoded and parsed back). What is simulated:
/// - a clock (milliseconds) and a queue of timed happenings, in place of the Reactor;
/// - processes: each binary has a behaviour (`good`, `crashes` some ms after
///   READY, `neverReady`, `hangs`: pings WATCHDOG=1 and then stops); a signalled
///   process exits a little later;
/// - the file system: the program file and `PROGRAM.previous`, changed only by
///   an install (which moves the current file to `.previous`) and a rollback
///   (which puts `.previous` back when it is the target);
/// - the state directory: the last persisted record;
/// - the daemon's glue, with the rules the real one follows: a release is
///   installed only when no trial or rollback runs (`BinaryLife.isOnTrial`)
///   and the install's record is persisted before the file moves; the trial
///   watchdog's check reports the hung generations;
/// - an operator and a fleet: releases arriving at random moments, plain
///   restarts, re-execs (only when `isSettled`, as `DaemonActivity` allows),
///   and overseerd itself stopped (SIGTERM) or killed (SIGKILL; its children die
///   with it) at any step, then started again from the state directory.
///
/// Invariants, checked after every step:
/// 1. A binary that failed within its probation (crashed, hung, never ready)
///    never becomes ready again until forgotten, whatever overseerd restarts follow.
/// 2. A rollback's target always is the first binary or one that passed probation.
/// 3. overseerd never exits unless it was asked to stop (the first binary and
///    the good releases never crash: any exit would be a bad release taking the service down).
/// 4. At rest (nothing installing or rolling back), the binary `BinaryLife`
///    says is installed is the file in place, with that release's version.
/// 5. At the end, after a quiet period: a generation serves, on the installed
///    binary, which is neither rejected nor a bad release.
///
/// `scenarios` seeds × up to `steps` happenings each run in CI (a fixed seed
/// set, a few seconds); `OVERSEERD_SIMULATION_SEEDS=N` runs N more by hand, from
/// `OVERSEERD_SIMULATION_FIRST_SEED`. A failure prints its seed and the trace's
/// tail; `OVERSEERD_SIMULATION_SEED=N` replays seed N alone with its whole trace.
///
/// Planted bugs are caught (checked by hand, see the commit that added this):
/// - the trial forgotten when overseerd starts again (`record.onTrial = false`
///   in `BinaryLife.start`, issue 22's sequence 1): seed 5 fails invariant 3;
/// - a release taken during a trial with the binary it replaces as the last good
///   one (`record.lastGood = record.installed` in `installing`, the glue's hold
///   removed; sequence 2, "previous taken from the binary being replaced"):
///   seed 15 fails invariant 3.
@Suite struct UpgradeSimulationTests {
    static let scenarios: UInt64 = 2000
    static let steps = 250

    enum Behaviour: Equatable { case good, crashes(afterMS: Int64), neverReady, hangs }

    struct Happening {
        var at: Int64
        var order: Int
        var what: What
    }

    enum What: Equatable {
        case spawned(Int), ready(Int), exited(Int, ProcessExit), timer(Supervision.Timer, token: Int)
        case installDone(BinaryLife.Release), rollbackDone(target: BinaryLife.Release)
        case releaseArrives, restartRequested, reexec, stopOverseerd, killOverseerd, startOverseerd
    }

    final class World {
        var rng: SplitMix64
        let seed: UInt64
        let settings: Supervision.Settings
        var now: Int64 = 0
        var order = 0
        var queue: [Happening] = []
        var machine: Supervision?
        var store: String?
        // The file system.
        var program: String
        var previous: String?
        // Processes: generation → binary, and which of them overseerd asked to stop.
        var processes: [Int: String] = [:]
        var readyGenerations: Set<Int> = []
        var behaviours: [String: Behaviour]
        var versions: [String: String] = [:]
        var timerTokens: [Supervision.Timer: Int] = [:]
        var nextToken = 0
        var installing: BinaryLife.Release?
        var rollingBack = false
        var waiting: [BinaryLife.Release] = []
        var stopAsked = false
        var releaseCount = 0
        // What the invariants look at.
        var failedOnTrial: Set<String> = []
        var proven: Set<String>
        /// What happened, formatted only when it is shown (formatting every step would cost most of the run).
        enum Entry { case fed(Int64, Supervision.Event, [Supervision.Action]), note(Int64, String) }
        var entries: [Entry] = []
        var trace: [String] {
            entries.map { entry in
                switch entry {
                case let .fed(at, event, actions): "t=\(at) \(event) -> \(actions)"
                case let .note(at, text): "t=\(at) \(text)"
                }
            }
        }
        var failures: [String] = []
        /// Generation numbers go on across overseerd's restarts in the world's books.
        var epoch = 0

        init(seed: UInt64, settings: Supervision.Settings) {
            self.seed = seed
            self.settings = settings
            rng = SplitMix64(seed: seed)
            let first = String(repeating: "a", count: 64)
            program = first
            behaviours = [first: .good]
            proven = [first]
        }

        func check(_ condition: Bool, _ message: @autoclosure () -> String) {
            if !condition { failures.append("t=\(now) \(message())") }
        }

        func random(_ range: ClosedRange<Int64>) -> Int64 { Int64.random(in: range, using: &rng) }

        func schedule(after delay: Int64, _ what: What) {
            order += 1
            queue.append(Happening(at: now + delay, order: order, what: what))
        }

        // MARK: Overseerd's life

        func startOverseerd() {
            epoch += 1
            stopAsked = false
            let record = store.flatMap { try? BinaryLife.Record(parsing: $0) } ?? BinaryLife.Record()
            machine = Supervision(settings: settings, record: record)
            feed(.binaryLife(.started(identified: program)))
            feed(.started)
        }

        /// SIGKILL, or the end of a stop: the children go with overseerd (PR_SET_PDEATHSIG);
        /// what was in flight (an install, a rollback) happened or not, as the clock says.
        func overseerdGone() {
            machine = nil
            processes = [:]
            readyGenerations = []
            timerTokens = [:]
            // An install or a rollback under way on its thread: its rename happened, or not.
            for happening in queue {
                switch happening.what {
                case let .installDone(release) where random(0 ... 1) == 0:
                    previous = program
                    program = release.sha256
                case let .rollbackDone(target) where random(0 ... 1) == 0 && previous == target.sha256:
                    program = target.sha256
                default:
                    break
                }
            }
            installing = nil
            rollingBack = false
            queue.removeAll { happening in
                switch happening.what {
                case .spawned, .ready, .exited, .timer, .installDone, .rollbackDone: true
                default: false
                }
            }
            schedule(after: random(10 ... 2000), .startOverseerd)
        }

        func reexec() {
            guard let old = machine, old.isSettled, installing == nil, !rollingBack, let serving = old.serving,
                  let binary = processes[key(serving)] else { return }
            var new = Supervision(settings: settings, adoptingServing: serving, binary: binary, record: old.binaryLife.record)
            timerTokens = [:]
            entries.append(.note(now, "re-exec, generation \(serving) adopted"))
            var actions = new.handle(.binaryLife(.started(identified: program)))
            actions += new.handle(.binaryLife(.generationReady(serving)))
            machine = new
            perform(actions)
        }

        // MARK: Feeding and carrying out

        func key(_ generation: Int) -> Int { epoch * 100_000 + generation }

        func feed(_ event: Supervision.Event) {
            guard var current = machine else { return }
            let actions = current.handle(event)
            machine = current
            entries.append(.fed(now, event, actions))
            perform(actions)
        }

        func perform(_ actions: [Supervision.Action]) {
            for action in actions {
                guard machine != nil else { return }
                switch action {
                case let .spawnChild(generation):
                    processes[key(generation)] = program
                    schedule(after: 0, .spawned(generation))
                case let .signalChild(generation, signal):
                    if processes[key(generation)] != nil, [settings.stopSignal, SIGTERM, SIGINT].contains(signal) {
                        schedule(after: random(1 ... 300), .exited(generation, .killed(signal: signal)))
                    }
                case let .killGeneration(generation):
                    schedule(after: 1, .exited(generation, .killed(signal: SIGKILL)))
                case let .startTimer(timer, after):
                    nextToken += 1
                    timerTokens[timer] = nextToken
                    schedule(after: after.totalNanoseconds / 1_000_000, .timer(timer, token: nextToken))
                case let .cancelTimer(timer):
                    timerTokens[timer] = nil
                case .persistState:
                    store = machine!.binaryLife.record.encoded
                case let .rollBack(target, bad):
                    check(proven.contains(target.sha256), "invariant 2: rollback target \(target.sha256.prefix(8)) never passed probation")
                    failedOnTrial.insert(bad.sha256)
                    rollingBack = true
                    schedule(after: random(1 ... 400), .rollbackDone(target: target))
                case let .exit(status):
                    check(stopAsked, "invariant 3: overseerd exited with \(status) unasked")
                    overseerdGone()
                    return
                case .report, .log:
                    break
                }
            }
            if let life = machine?.binaryLife, !life.isOnTrial, let good = life.lastGood { proven.insert(good.sha256) }
        }

        // MARK: The upgrade driver's rules

        func takeWaitingRelease() {
            guard let life = machine?.binaryLife, installing == nil, !rollingBack, !life.isOnTrial, life.rollback == nil,
                  !waiting.isEmpty else { return }
            let release = waiting.removeFirst()
            if life.rejected.contains(release.sha256) || life.installed?.sha256 == release.sha256 { return }
            feed(.binaryLife(.installing(release)))
            guard machine?.binaryLife.installed == release else { return }
            installing = release
            schedule(after: random(1 ... 200), .installDone(release))
        }

        func happen(_ what: What) {
            switch what {
            case let .spawned(generation):
                guard let binary = processes[key(generation)] else { return }
                feed(.childSpawned(generation: generation, binary: binary))
                switch behaviours[binary] ?? .good {
                case .neverReady: break
                default: schedule(after: random(5 ... 2000), .ready(generation))
                }
            case let .ready(generation):
                guard let binary = processes[key(generation)] else { return }
                readyGenerations.insert(key(generation))
                feed(.childReady(generation: generation))
                if failedOnTrial.contains(binary), machine?.serving == generation {
                    check(false, "invariant 1: \(binary.prefix(8)) failed on trial and serves again (generation \(generation))")
                }
                if case let .crashes(afterMS) = behaviours[binary] ?? .good {
                    schedule(after: afterMS, .exited(generation, .exited(3)))
                }
            case let .exited(generation, exit):
                guard processes.removeValue(forKey: key(generation)) != nil else { return }
                readyGenerations.remove(key(generation))
                feed(.childExited(generation: generation, exit))
            case let .timer(timer, token):
                guard timerTokens[timer] == token else { return }
                timerTokens[timer] = nil
                if case .trialWatchdog = timer {
                    let stale = processes.filter { behaviours[$0.value] == .hangs && readyGenerations.contains($0.key) }
                        .map { $0.key % 100_000 }.sorted()
                    feed(.binaryLife(.trialWatchdogChecked(stale: stale)))
                } else {
                    feed(.timerFired(timer))
                }
            case let .installDone(release):
                installing = nil
                guard machine != nil else { return }
                previous = program
                program = release.sha256
                feed(.restartRequested(reason: "upgrade"))
            case let .rollbackDone(target):
                rollingBack = false
                var restored: String?
                if previous == target.sha256 {
                    program = target.sha256
                    restored = program
                }
                feed(.binaryLife(.rollbackFinished(restored: restored, failure: restored == nil ? "no such previous file" : nil)))
            case .releaseArrives:
                releaseCount += 1
                let hex = String(releaseCount, radix: 16)
                let sha = String(repeating: "0", count: 64 - hex.count) + hex
                // Without probation (0) a binary that crashes after READY is not covered, by design:
                // there, bad releases fail before they are ready.
                let crashes = settings.probation > .zero
                let behaviour: Behaviour = switch random(0 ... 9) {
                case 0 ... 3: .good
                case 4 ... 6: crashes ? .crashes(afterMS: random(10 ... 8000)) : .neverReady
                case 7 ... 8: .neverReady
                default: settings.probationWatchdog != nil ? .hangs : crashes ? .crashes(afterMS: random(10 ... 8000)) : .neverReady
                }
                behaviours[sha] = behaviour
                versions[sha] = "2.\(releaseCount).0"
                waiting.append(.init(sha256: sha, version: versions[sha]))
            case .restartRequested:
                feed(.restartRequested(reason: "SIGUSR2"))
            case .reexec:
                reexec()
            case .stopOverseerd:
                guard machine != nil, !stopAsked else { return }
                stopAsked = true
                feed(.stopRequested(signal: SIGTERM))
            case .killOverseerd:
                guard machine != nil else { return }
                entries.append(.note(now, "SIGKILL to overseerd"))
                overseerdGone()
            case .startOverseerd:
                if machine == nil { startOverseerd() }
            }
            takeWaitingRelease()
        }

        func checkAtRest() {
            guard let life = machine?.binaryLife, installing == nil, !rollingBack, !life.isOnTrial, life.rollback == nil,
                  let installed = life.installed else { return }
            check(installed.sha256 == program, "invariant 4: BinaryLife says \(installed.sha256.prefix(8)) is installed, the file is \(program.prefix(8))")
            check(installed.version == versions[program], "invariant 4: version \(installed.version ?? "none") for \(program.prefix(8)), whose release is \(versions[program] ?? "none")")
        }

        func run(steps: Int) {
            startOverseerd()
            for _ in 0 ..< steps {
                // An outside happening now and then; otherwise the next thing due.
                if random(0 ... 99) < 20 {
                    let what: What = switch random(0 ... 99) {
                    case 0 ..< 45: .releaseArrives
                    case 45 ..< 70: .restartRequested
                    case 70 ..< 82: .reexec
                    case 82 ..< 91: .stopOverseerd
                    default: .killOverseerd
                    }
                    schedule(after: random(0 ... 3000), what)
                }
                guard advance() else { break }
                checkAtRest()
                if !failures.isEmpty { return }
            }
            // Quiet: no more outside happenings, let everything settle (the longest probation and more).
            queue.removeAll { [.releaseArrives, .restartRequested, .reexec, .stopOverseerd, .killOverseerd].contains($0.what) }
            waiting = []
            var guardSteps = 0
            while advance(until: now + 120_000), guardSteps < 5000 { guardSteps += 1 }
            if machine == nil { startOverseerd() }
            while advance(until: now + 120_000), guardSteps < 10000 { guardSteps += 1 }
            checkAtRest()
            guard let machine else { return check(false, "invariant 5: overseerd is not running at the end") }
            guard let serving = machine.serving, let binary = processes[key(serving)] else {
                return check(false, "invariant 5: nothing serves at the end")
            }
            check(binary == program, "invariant 5: generation \(serving) serves \(binary.prefix(8)), the file is \(program.prefix(8))")
            check(!machine.binaryLife.rejected.contains(binary), "invariant 5: a rejected binary serves at the end")
            check(behaviours[binary] == .good, "invariant 5: a bad release (\(String(describing: behaviours[binary]))) serves at the end")
        }

        /// Runs the next happening (due before `limit`, if given); false when there is none.
        func advance(until limit: Int64? = nil) -> Bool {
            guard let index = queue.indices.min(by: { (queue[$0].at, queue[$0].order) < (queue[$1].at, queue[$1].order) }) else { return false }
            if let limit, queue[index].at > limit { return false }
            let next = queue.remove(at: index)
            now = max(now, next.at)
            happen(next.what)
            return true
        }
    }

    static let settings: [Supervision.Settings] = [
        .init(readiness: .notify, readyTimeout: .seconds(5), stopSignal: SIGTERM, stopTimeout: .seconds(3), probation: .seconds(10)),
        .init(readiness: .notify, readyTimeout: .seconds(5), stopSignal: SIGTERM, stopTimeout: .seconds(3), probation: .seconds(10),
              probationWatchdog: .seconds(2)),
        .init(readiness: .notify, readyTimeout: .seconds(3), stopSignal: SIGTERM, stopTimeout: .seconds(1), probation: .zero),
    ]

    static func run(seed: UInt64) -> World {
        let world = World(seed: seed, settings: settings[Int(seed % UInt64(settings.count))])
        world.run(steps: steps)
        return world
    }

    @Test func seededScenariosKeepEveryInvariant() {
        var seeds = Array(1 ... Self.scenarios)
        if let only = getenv("OVERSEERD_SIMULATION_SEED").flatMap({ UInt64(String(cString: $0)) }) {
            // Replay one seed, with its whole trace.
            let world = Self.run(seed: only)
            print(world.trace.joined(separator: "\n"))
            #expect(world.failures.isEmpty, "seed \(only): \(world.failures)")
            return
        }
        if let extra = getenv("OVERSEERD_SIMULATION_SEEDS").flatMap({ UInt64(String(cString: $0)) }) {
            let first = getenv("OVERSEERD_SIMULATION_FIRST_SEED").flatMap { UInt64(String(cString: $0)) } ?? 1_000_000
            seeds += Array(first ..< first + extra)
        }
        var rollbacks = 0, releases = 0, restarts = 0
        for seed in seeds {
            let world = Self.run(seed: seed)
            if !world.failures.isEmpty {
                Issue.record("seed \(seed) (replay: UpgradeSimulationTests.run(seed: \(seed))): \(world.failures.prefix(3).joined(separator: "; "))\n\(world.trace.suffix(25).joined(separator: "\n"))")
                return
            }
            rollbacks += world.failedOnTrial.count
            releases += world.releaseCount
            restarts += world.epoch - 1
        }
        // The walk reaches the corners it is for.
        print("UpgradeSimulationTests: \(seeds.count) scenarios, \(releases) releases, \(rollbacks) rollbacks, \(restarts) overseerd restarts")
        #expect(rollbacks > Int(Self.scenarios) / 2)
        #expect(releases > Int(Self.scenarios))
        #expect(restarts > Int(Self.scenarios) / 2)
    }
}

import Glibc
import OverseerCore
import Testing

/// Seeded random sequences against `ManifestTrust`: a publisher raising its
/// sequence, setting expiries and rotating keys; a network attacker replaying
/// any manifest it saw, re-signing with keys that leaked after they were
/// retired (or one key short of a threshold), serving another product's
/// manifest signed by the same keys, and freezing (serving nothing new);
/// overseerd stopped and started again between any two steps (the trust
/// record encoded and parsed back, as the state file carries it); the operator
/// running `forget-keys` (and the publisher going back to the command line's keys).
///
/// Invariants, after every step:
/// 1. Whatever is accepted was published by the publisher for this product.
/// 2. Sequences accepted never go down, and one sequence is only ever accepted with one digest.
/// 3. Nothing accepted had expired at that moment.
/// 4. After a rotation, a manifest signed only by retired keys is never accepted.
/// 5. Liveness: the publisher's newest manifest, unexpired and not yet superseded, is accepted when delivered.
///
/// `OVERSEERD_TRUST_SIMULATION_SEED=N` replays one seed; the count is `scenarios`.
@Suite struct ManifestTrustSimulationTests {
    static let scenarios: UInt64 = 500
    static let steps = 200

    struct Published: Equatable {
        let candidate: ManifestTrust.Candidate
        let genuine: Bool
        let forThisProduct: Bool
    }

    /// One seed decides every step (`SplitMix64`, as `SupervisionPropertyTests`).
    struct Random {
        var generator: SplitMix64
        init(state: UInt64) { generator = SplitMix64(seed: state) }
        mutating func next() -> UInt64 { generator.next() }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    }

    @Test func randomSequencesKeepTheInvariants() throws {
        if let text = getenv("OVERSEERD_TRUST_SIMULATION_SEED").map({ String(cString: $0) }), let seed = UInt64(text) {
            try run(seed: seed)
            return
        }
        var totals = (accepted: 0, refused: 0, rotations: 0, restarts: 0)
        for seed in 1 ... Self.scenarios {
            let figures = try run(seed: seed)
            totals = (totals.accepted + figures.accepted, totals.refused + figures.refused,
                      totals.rotations + figures.rotations, totals.restarts + figures.restarts)
        }
        print("manifest trust simulation: \(Self.scenarios) scenarios, \(totals.accepted) accepted, \(totals.refused) refused, \(totals.rotations) rotations, \(totals.restarts) restarts")
        // The scenarios exercise every rule, not only the easy path.
        #expect(totals.accepted > 1000 && totals.refused > 1000 && totals.rotations > 100 && totals.restarts > 1000, "\(totals)")
    }

    @discardableResult
    func run(seed: UInt64) throws -> (accepted: Int, refused: Int, rotations: Int, restarts: Int) {
        var random = Random(state: seed)
        var nextKey = 0
        func newKeys(_ count: Int) -> [String] {
            (0 ..< count).map { _ in nextKey += 1; return "key\(nextKey)" }
        }
        let initial = newKeys(1 + random.below(3))
        let commandLine = ManifestTrust.KeySet(keys: initial, required: 1 + random.below(initial.count))
        var publisherKeys = commandLine
        var retired: Set<String> = []
        var trust = ManifestTrust(commandLine: commandLine)
        var sequence: UInt64 = 0
        var now: Int64 = 1_800_000_000
        var seen: [Published] = []
        var newest: Published?
        var acceptedSequences: [UInt64: String] = [:]
        var highestAccepted: UInt64 = 0
        var figures = (accepted: 0, refused: 0, rotations: 0, restarts: 0)
        var trace: [String] = []

        func fail(_ why: String) throws {
            Issue.record("seed \(seed): \(why)\n\(trace.suffix(12).joined(separator: "\n"))")
            throw CancellationError()
        }

        func deliver(_ manifest: Published, expectAccepted: Bool) throws {
            let before = trust
            let verdict = trust.judge(manifest.candidate, releaseName: "app", now: now)
            trace.append("t=\(now) deliver seq \(manifest.candidate.sequence ?? 0) genuine \(manifest.genuine) signers \(manifest.candidate.signers.sorted()) rotation \(manifest.candidate.rotation?.description ?? "-") → \(verdict)")
            switch verdict {
            case let .refused(refusal):
                figures.refused += 1
                if trust != before { try fail("a refusal (\(refusal)) changed the trust") }
                if expectAccepted { try fail("the publisher's newest manifest was refused: \(refusal)") }
            case let .accepted(rotated):
                figures.accepted += 1
                let candidate = manifest.candidate
                if !manifest.genuine || !manifest.forThisProduct { try fail("accepted a manifest the publisher did not publish for this product") }
                guard let number = candidate.sequence else { try fail("accepted a signed manifest without a sequence"); return }
                if number < highestAccepted { try fail("sequence went down: \(number) after \(highestAccepted)") }
                if let digest = acceptedSequences[number], digest != candidate.digest { try fail("sequence \(number) accepted with two digests") }
                if let expires = candidate.expires, expires <= now { try fail("accepted an expired manifest") }
                if !candidate.signers.isEmpty, candidate.signers.isSubset(of: retired) { try fail("accepted a manifest signed only by retired keys") }
                acceptedSequences[number] = candidate.digest
                highestAccepted = max(highestAccepted, number)
                if rotated != nil { figures.rotations += 1 }
            }
        }

        func publish(rotation: ManifestTrust.KeySet?, expires: Int64?) -> Published {
            sequence += 1
            var signers = Set(publisherKeys.keys.shuffledPrefix(publisherKeys.required, &random))
            if let rotation { signers.formUnion(rotation.keys.shuffledPrefix(rotation.required, &random)) }
            let candidate = ManifestTrust.Candidate(name: "app", sequence: sequence, size: 100, expires: expires, rotation: rotation,
                                                    digest: digest(), signers: signers)
            return Published(candidate: candidate, genuine: true, forThisProduct: true)
        }

        // Digests as the state file holds them: 64 hex digits.
        func digest() -> String {
            let hex = String(random.next(), radix: 16)
            return String(repeating: String(repeating: "0", count: 16 - hex.count) + hex, count: 4)
        }
        func isExpired(_ manifest: Published) -> Bool { manifest.candidate.expires.map { $0 <= now } ?? false }
        for _ in 0 ..< Self.steps {
            switch random.below(100) {
            case 0 ..< 30:
                // The publisher signs a fresh manifest; delivered at once.
                let expires: Int64? = random.below(4) == 0 ? nil : now + Int64(1 + random.below(600))
                let manifest = publish(rotation: nil, expires: expires)
                seen.append(manifest)
                newest = manifest
                try deliver(manifest, expectAccepted: true)
            case 30 ..< 36:
                // A rotation: new keys, signed by the old threshold and the new one.
                let count = 1 + random.below(3)
                let rotation = ManifestTrust.KeySet(keys: newKeys(count), required: 1 + random.below(count))
                let manifest = publish(rotation: rotation, expires: now + 600)
                seen.append(manifest)
                newest = manifest
                try deliver(manifest, expectAccepted: true)
                retired.formUnion(publisherKeys.keys)
                publisherKeys = rotation
            case 36 ..< 56:
                // Replay of anything seen.
                if let old = seen.isEmpty ? nil : random.pick(seen) { try deliver(old, expectAccepted: old == newest && !isExpired(old)) }
            case 56 ..< 64:
                // Retired (leaked) keys sign a manifest with a higher sequence.
                guard !retired.isEmpty else { continue }
                let forged = ManifestTrust.Candidate(name: "app", sequence: sequence + 1 + UInt64(random.below(5)), size: 1,
                                                     digest: digest(), signers: Set(retired))
                try deliver(Published(candidate: forged, genuine: false, forThisProduct: true), expectAccepted: false)
            case 64 ..< 70:
                // One key short of the threshold (one current key stolen).
                guard publisherKeys.required > 1 else { continue }
                let forged = ManifestTrust.Candidate(name: "app", sequence: sequence + 1, size: 1, digest: digest(),
                                                     signers: Set(publisherKeys.keys.shuffledPrefix(publisherKeys.required - 1, &random)) .union(retired))
                try deliver(Published(candidate: forged, genuine: false, forThisProduct: true), expectAccepted: false)
            case 70 ..< 76:
                // Another product's manifest, genuinely signed by the same keys (mix-and-match).
                let other = ManifestTrust.Candidate(name: "billing", sequence: sequence + 1, size: 1, digest: digest(),
                                                    signers: Set(publisherKeys.keys))
                try deliver(Published(candidate: other, genuine: true, forThisProduct: false), expectAccepted: false)
            case 76 ..< 80:
                // The same sequence as the newest with other bytes (a conflict).
                guard let newest else { continue }
                var conflicting = newest.candidate
                conflicting.digest = digest()
                try deliver(Published(candidate: conflicting, genuine: false, forThisProduct: true), expectAccepted: false)
            case 80 ..< 90:
                // Time passes (a freeze: nothing new is served).
                now += Int64(random.below(400))
                if let newest, let expires = newest.candidate.expires, expires <= now, trust.highest?.sequence == newest.candidate.sequence {
                    if !trust.hasExpired(now: now) { try fail("the accepted manifest expired but hasExpired says no") }
                }
            case 90 ..< 98:
                // overseerd stops and starts again: the trust comes back from its file.
                let text = trust.record.encoded
                trust = ManifestTrust(commandLine: commandLine, record: try ManifestTrust.Record(parsing: text))
                figures.restarts += 1
                trace.append("restart")
            default:
                // The operator goes back to the command line's keys, and so does the publisher.
                _ = trust.forgetKeys()
                if trust.current != commandLine { try fail("forget-keys left other keys than the command line's") }
                retired.subtract(commandLine.keys)
                retired.formUnion(publisherKeys.keys.filter { !commandLine.keys.contains($0) })
                publisherKeys = commandLine
                newest = nil
                trace.append("forget-keys")
            }
        }
        return figures
    }
}

extension Array {
    /// The first `count` of a seeded shuffle.
    func shuffledPrefix(_ count: Int, _ random: inout ManifestTrustSimulationTests.Random) -> [Element] {
        var items = self
        for index in items.indices.reversed() where index > 0 { items.swapAt(index, random.below(index + 1)) }
        return Array(items.prefix(count))
    }
}

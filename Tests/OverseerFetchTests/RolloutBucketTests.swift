import OverseerFetch
import Testing

/// The rollout bucket: fixed vectors (computed with Python's hashlib, apart
/// from this code) and an even spread over many hosts.
@Suite struct RolloutBucketTests {
    @Test(arguments: [
        ("host-a", "2.0.0", 28),
        ("host-b", "2.0.0", 63),
        ("0123456789abcdef0123456789abcdef", "1.2.3", 32),
        ("", "", 15),
    ])
    func fixedVectors(hostID: String, version: String, bucket: Int) {
        #expect(RolloutBucket.bucket(hostID: hostID, version: version) == bucket)
    }

    /// Over 10,000 host ids the share below 10, 50 and 90 is within ±2 % of uniform.
    @Test func spreadIsUniform() {
        var buckets: [Int] = []
        for index in 0 ..< 10_000 {
            buckets.append(RolloutBucket.bucket(hostID: "host-\(index)-\(index &* 2654435761)", version: "3.1.4"))
        }
        #expect(buckets.allSatisfy { (0 ..< 100).contains($0) })
        for percent in [10, 50, 90] {
            let share = Double(buckets.filter { $0 < percent }.count) / 100.0
            #expect(abs(share - Double(percent)) <= 2.0, "\(share) % below \(percent)")
        }
    }
}

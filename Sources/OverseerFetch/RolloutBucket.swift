import CSodium

/// Which stage of a rollout a host belongs to: the first 8 bytes of
/// SHA-256(`hostID + "/" + version`), read big-endian, modulo 100. Stable for a
/// host and a version, independent of every other host, and different for
/// each version, so the same hosts are not always first.
public enum RolloutBucket {
    public static func bucket(hostID: String, version: String) -> Int {
        let input = Array((hostID + "/" + version).utf8)
        var digest = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        _ = crypto_hash_sha256(&digest, input, UInt64(input.count))
        let first8 = digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Int(first8 % 100)
    }
}

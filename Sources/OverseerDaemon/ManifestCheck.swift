import OverseerCore
import OverseerFetch
import OverseerProtocol

/// What can be found out about a manifest's bytes without the trust's state:
/// the manifest parsed, its rotation's keys, which keys signed it and its
/// digest, or why it is refused already. Slow for a large manifest (up to
/// 1 MiB parsed and hashed, a signature checked per trusted key), so it runs
/// on a background job; `ManifestTrust` then judges on the loop.
struct ManifestCheck: Sendable {
    enum Outcome: Sendable {
        case checked(ReleaseManifest, ManifestTrust.Candidate)
        /// Refused before the trust is asked: why (one line, from the network: escaped), and its event.
        case refused(String, DaemonEvent)
    }

    let outcome: Outcome

    /// Checks `bytes` and its `.minisig` text against `current`, the keys manifests must be signed with.
    init(bytes: [UInt8], signature: String?, current: ManifestTrust.KeySet) {
        outcome = Self.check(bytes, signature, current)
    }

    private static func check(_ bytes: [UInt8], _ signature: String?, _ current: ManifestTrust.KeySet) -> Outcome {
        // Parsed before its signatures are checked (the parser is bounded and fuzzed):
        // a rotation's new keys must be known to count their signatures.
        let manifest: ReleaseManifest
        do {
            manifest = try ReleaseManifest(parsing: bytes)
        } catch {
            return .refused("\(error)", .upgradePollFailed)
        }
        var rotation: ManifestTrust.KeySet?
        var newKeys: [Minisign.PublicKey] = []
        if let keys = manifest.keys {
            for text in keys {
                do {
                    newKeys.append(try Minisign.PublicKey(parsing: text))
                } catch {
                    return .refused("its \"keys\" holds \(EscapedText.escape(text, limit: 64)): \(error)", .manifestRefused)
                }
            }
            rotation = ManifestTrust.KeySet(keys: newKeys.map(\.base64), required: manifest.signaturesRequired ?? 1)
        }
        var signers: Set<String> = []
        // Unsigned (no --minisign-key), nothing is checked: a rotation is refused by the machine.
        if !current.isUnsigned {
            guard let signature else { return .refused("there is no .minisig signature beside it", .manifestRefused) }
            let signatures: [Minisign.Signature]
            do {
                signatures = try Minisign.signatures(parsing: signature)
            } catch {
                return .refused("its signature: \(error)", .manifestRefused)
            }
            // The trusted keys first; a rotation's own keys only once those are satisfied, so that
            // a forged manifest naming 16 keys of its own costs no more checks than the trusted ones.
            let trusted = current.keys.compactMap { try? Minisign.PublicKey(parsing: $0) }
            signers = Minisign.signers(of: bytes, signatures: signatures, keys: trusted).keys
            let proposed = newKeys.filter { !trusted.contains($0) }
            if signers.count >= current.required, !proposed.isEmpty {
                signers.formUnion(Minisign.signers(of: bytes, signatures: signatures, keys: proposed).keys)
            }
        }
        let candidate = ManifestTrust.Candidate(name: manifest.name, sequence: manifest.sequence, size: manifest.size,
                                                expires: manifest.expires, rotation: rotation,
                                                digest: Minisign.sha256(bytes), signers: signers)
        return .checked(manifest, candidate)
    }
}

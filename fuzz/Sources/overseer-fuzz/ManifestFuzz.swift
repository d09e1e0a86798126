import OverseerCore
import OverseerFetch
import OverseerProtocol

/// A release manifest with the trust fields, the trust state file, several
/// signatures in one `.minisig` and RFC 3339 times. First byte: 0 manifest,
/// 1 trust record, 2 signatures, 3 an RFC 3339 time; the rest is the input.
func fuzzManifest(_ bytes: UnsafeRawBufferPointer) {
    guard let first = bytes.first else { return }
    let rest = Array(bytes.dropFirst())
    switch first % 4 {
    case 0:
        guard let manifest = try? ReleaseManifest(parsing: rest) else { return }
        require(!manifest.version.isEmpty && manifest.version.utf8.count <= 128, "manifest version \(manifest.version.debugDescription)")
        require((0 ... 100).contains(manifest.stagingPercent), "staging percent \(manifest.stagingPercent)")
        require(manifest.sequence.map { $0 >= 1 && $0 <= UInt64(Int64.max) } ?? true, "sequence \(String(describing: manifest.sequence))")
        require(manifest.size.map { $0 >= 1 } ?? true, "size \(String(describing: manifest.size))")
        require(manifest.name.map { !$0.isEmpty && $0.utf8.count <= 128 && !$0.unicodeScalars.contains { $0.value < 0x20 } } ?? true,
                "name \(String(describing: manifest.name))")
        if let keys = manifest.keys {
            require((1 ... ReleaseManifest.maximumKeys).contains(keys.count), "\(keys.count) keys")
            require(keys.allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } && !$0.isEmpty }, "keys \(keys)")
        } else {
            require(manifest.signaturesRequired == nil, "signatures_required without keys")
        }
        if let expires = manifest.expires {
            require(expires >= 0 && RFC3339.parse(RFC3339.format(expires)) == expires, "expires \(expires) does not round-trip")
        }
        // What the trust machine does with it never traps, whatever the fields.
        var trust = ManifestTrust(commandLine: .init(keys: ["k"], required: 1))
        let rotation = manifest.keys.map { ManifestTrust.KeySet(keys: $0, required: manifest.signaturesRequired ?? 1) }
        _ = trust.judge(.init(name: manifest.name, sequence: manifest.sequence, size: manifest.size, expires: manifest.expires,
                              rotation: rotation, digest: Minisign.sha256(rest), signers: Set(["k"] + (manifest.keys ?? []))),
                        releaseName: "app", now: 1_800_000_000)
        let again = try? ManifestTrust.Record(parsing: trust.record.encoded)
        require(again == trust.record, "trust record \(trust.record.encoded.debugDescription) does not parse back")
    case 1:
        guard let record = try? ManifestTrust.Record(parsing: String(decoding: rest, as: UTF8.self)) else { return }
        let again = try? ManifestTrust.Record(parsing: record.encoded)
        require(again == record, "trust record \(record.encoded.debugDescription) does not parse back")
    case 2:
        guard let signatures = try? Minisign.signatures(parsing: String(decoding: rest, as: UTF8.self)) else { return }
        require((1 ... Minisign.maximumSignatures).contains(signatures.count), "\(signatures.count) signatures")
        for signature in signatures {
            require(signature.keyID.count == 8 && signature.signature.count == 64 && signature.globalSignature.count == 64,
                    "signature sizes \(signature.keyID.count) \(signature.signature.count) \(signature.globalSignature.count)")
        }
    default:
        let text = String(decoding: rest, as: UTF8.self)
        guard let seconds = RFC3339.parse(text) else { return }
        require(seconds >= -86400 && RFC3339.parse(RFC3339.format(seconds)) == seconds, "RFC 3339 \(text.debugDescription) -> \(seconds)")
    }
}

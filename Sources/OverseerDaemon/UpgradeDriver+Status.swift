import OverseerCore
import OverseerProtocol

/// What upgrades say in `overseerd status` and STATUS=.
extension UpgradeDriver {
    /// One line for `overseerd status`.
    var summary: String {
        let state: String = switch cycle.state {
        case .idle: "idle"
        case .fetching: "fetching"
        case let .verifying(step, sha256): "verifying \(sha256.prefix(12)) (\(step))"
        case let .installing(sha256): "installing \(sha256.prefix(12))"
        case let .installPending(sha256, attempts, reason):
            "install of \(sha256.prefix(12)) pending after \(attempts) failed attempt(s): \(reason)"
        case let .installHeld(sha256): "\(sha256.prefix(12)) verified, waiting for the trial to end"
        case let .restarting(sha256): "restarting into \(sha256.prefix(12))"
        }
        var release = ""
        if settings.manifest {
            release = ", release \(shownVersion)"
            if let seen = manifestTracking.seen {
                release += "; manifest \(seen.version), bucket \(seen.bucket) of \(seen.percent) %: \(seen.decision)"
            }
            release += "; \(trustSummary)"
        }
        return "from \(settings.manifest ? "manifest " : "")\(settings.source), installed \(host.binaryLife.installed.map { String($0.sha256.prefix(12)) } ?? "unknown")\(release), \(state), \(host.binaryLife.rejected.count) rejected"
    }

    /// The release fields of `overseerd status --json`, with `--manifest`.
    var releaseFields: [(String, JSONText)] {
        guard settings.manifest else { return [] }
        var fields: [(String, JSONText)] = [("release_version", releaseVersion.map { .string($0) } ?? .null)]
        if let seen = manifestTracking.seen {
            fields += [("manifest_version", .string(seen.version)), ("bucket", .integer(Int64(seen.bucket))),
                       ("staging_percent", .integer(Int64(seen.percent))), ("rollout", .string(seen.decision))]
        }
        let trust = manifestTracking.trust
        fields += [("manifest_sequence", trust?.highest.map { .integer(Int64($0.sequence)) } ?? .null),
                   ("manifest_expires", manifestTracking.expires.map { .string(RFC3339.format($0)) } ?? .null),
                   ("manifest_expired", .bool(manifestTracking.expired)),
                   ("manifest_keys", .string(keysDescription))]
        return fields
    }

    /// Which keys manifests must be signed with, as a person reads it.
    private var keysDescription: String {
        guard let trust = manifestTracking.trust else { return "not read yet" }
        return trust.rotated.map { "rotated by a manifest: \($0)" } ?? "command line: \(trust.commandLine)"
    }

    /// The manifest's trust in one line: sequence, expiry, keys.
    private var trustSummary: String {
        var parts: [String] = []
        if let sequence = manifestTracking.trust?.highest?.sequence { parts.append("sequence \(sequence)") }
        if let expires = manifestTracking.expires {
            parts.append("\(manifestTracking.expired ? "expired" : "expires") \(RFC3339.format(expires))")
        }
        parts.append("keys \(keysDescription)")
        return parts.joined(separator: ", ")
    }

    /// The installed release's version as a person reads it.
    private var shownVersion: String { releaseVersion.map { EscapedText.escape($0, limit: 128) } ?? "unknown" }

    /// Why a verified binary waits to be installed, if one does.
    var pendingInstall: String? {
        guard case let .installPending(sha256, attempts, reason) = cycle.state else { return nil }
        return "\(sha256): \(attempts) failed attempt(s), last: \(reason)"
    }

    /// For STATUS=: the release installed and what the manifest's rollout means here.
    var rolloutStatus: String? {
        guard settings.manifest else { return nil }
        var text = "release \(shownVersion)"
        if let seen = manifestTracking.seen, seen.decision != "up to date" {
            text += ", manifest \(seen.version) \(seen.decision) (bucket \(seen.bucket) of \(seen.percent) %)"
        }
        if manifestTracking.expired, let expires = manifestTracking.expires {
            text += ", manifest expired at \(RFC3339.format(expires))"
        }
        return text
    }
}

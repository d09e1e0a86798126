import Glibc

/// Picks the release asset to download: the one matching `--asset-pattern`, or else the one
/// whose name mentions this OS and architecture. Signature and checksum files never qualify.
struct AssetSelector {
    /// An fnmatch(3) pattern; nil for the OS/architecture rule.
    var pattern: String?
    /// Lowercase names of this machine's architecture, any of which may appear in a name.
    var architectureNames: [String] = AssetSelector.hostArchitectureNames
    var osName = "linux"
    /// Names ending in these are sidecars, not binaries.
    var sidecarSuffixes: [String] = [".sha256", ".minisig", ".sig", ".asc"]

    static var hostArchitectureNames: [String] {
        #if arch(x86_64)
        ["x86_64", "amd64"]
        #elseif arch(arm64)
        ["aarch64", "arm64"]
        #else
        var info = utsname()
        uname(&info)
        let machine = withUnsafeBytes(of: &info.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        [machine.lowercased()]
        #endif
    }

    /// What the rule is, for messages.
    var ruleDescription: String {
        if let pattern { return "matching --asset-pattern \"\(pattern)\"" }
        return "for \(osName)/" + architectureNames.joined(separator: " or ")
    }

    func matches(_ name: String) -> Bool {
        let lower = name.lowercased()
        if sidecarSuffixes.contains(where: { lower.hasSuffix($0.lowercased()) }) { return false }
        if let pattern { return fnmatch(pattern, name, 0) == 0 }
        return lower.contains(osName) && architectureNames.contains(where: { lower.contains($0) })
    }

    /// The one matching asset; an error naming the candidates when there is none or more than one.
    func select(from release: GitHubRelease, repository: String) throws(FetchFailure) -> GitHubRelease.Asset {
        let candidates = release.assets.filter { matches($0.name) }
        let names = release.assets.map(\.name).joined(separator: ", ")
        switch candidates.count {
        case 1:
            return candidates[0]
        case 0:
            throw FetchFailure(.format, "release \(release.tag) of \(repository) has no asset \(ruleDescription) "
                + "among [\(names)] (set --asset-pattern)")
        default:
            throw FetchFailure(.format, "release \(release.tag) of \(repository) has \(candidates.count) assets "
                + "\(ruleDescription): [\(candidates.map(\.name).joined(separator: ", "))] (set --asset-pattern to choose one)")
        }
    }
}

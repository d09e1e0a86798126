/// What one host does with a release manifest, decided without I/O from the
/// manifest's facts, what the host runs and the host's bucket.
public enum RolloutDecision: Equatable, Sendable {
    /// The manifest's release is the one installed.
    case upToDate
    /// Install the manifest's release; `why` says which rule took it.
    case take(why: String)
    /// Not this host's turn yet: its bucket is not below the staging percent.
    case waitForStage(bucket: Int, percent: Int)
    /// The installed release was yanked and the manifest offers nothing newer:
    /// put the previous binary back.
    case rollBackToPrevious(why: String)
    /// The manifest is not to be followed; the installed binary stays.
    case reject(String)

    /// The facts a decision is made from.
    public struct Facts: Equatable, Sendable {
        public var manifestVersion: String
        public var stagingPercent: Int
        public var yanked: [String]
        /// The installed release's version, when known (nil before the first manifest install).
        public var installedVersion: String?
        /// The version of the binary kept as PROGRAM.previous, when known.
        public var previousVersion: String?
        public var bucket: Int

        public init(manifestVersion: String, stagingPercent: Int, yanked: [String], installedVersion: String?,
                    previousVersion: String?, bucket: Int) {
            self.manifestVersion = manifestVersion
            self.stagingPercent = stagingPercent
            self.yanked = yanked
            self.installedVersion = installedVersion
            self.previousVersion = previousVersion
            self.bucket = bucket
        }
    }

    public static func decide(_ facts: Facts) -> RolloutDecision {
        let manifestYanked = facts.yanked.contains(facts.manifestVersion)
        guard let installed = facts.installedVersion else {
            if manifestYanked { return .reject("its own version \(facts.manifestVersion) is yanked") }
            return staged(facts, why: "first release from this manifest")
        }
        let installedYanked = facts.yanked.contains(installed)
        if installed == facts.manifestVersion {
            guard manifestYanked else { return .upToDate }
            if let previous = facts.previousVersion, !facts.yanked.contains(previous) {
                return .rollBackToPrevious(why: "\(installed) is yanked; going back to \(previous)")
            }
            return .reject("\(installed) is yanked, but there is no earlier release that is not: it stays")
        }
        if manifestYanked { return .reject("its own version \(facts.manifestVersion) is yanked") }
        if installedYanked {
            // Fix forward at once, whatever the stage.
            return .take(why: "the installed \(installed) is yanked")
        }
        if ReleaseVersion.isOlder(facts.manifestVersion, than: installed) {
            return .reject("\(facts.manifestVersion) is older than the installed \(installed)")
        }
        return staged(facts, why: "\(installed) → \(facts.manifestVersion)")
    }

    private static func staged(_ facts: Facts, why: String) -> RolloutDecision {
        facts.bucket < facts.stagingPercent
            ? .take(why: "\(why), bucket \(facts.bucket) < \(facts.stagingPercent) %")
            : .waitForStage(bucket: facts.bucket, percent: facts.stagingPercent)
    }

    /// Go's names for this machine (`uname -m`): one manifest serves several platforms.
    public static func goArchitecture(machine: String) -> String {
        switch machine {
        case "x86_64", "amd64": "amd64"
        case "aarch64", "arm64": "arm64"
        case "armv7l", "armv6l": "arm"
        case "i686", "i386": "386"
        case "riscv64": "riscv64"
        case "ppc64le": "ppc64le"
        case "s390x": "s390x"
        default: machine
        }
    }
}

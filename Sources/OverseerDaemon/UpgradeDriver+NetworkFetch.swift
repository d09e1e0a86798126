import OverseerCore
import OverseerFetch
import OverseerProtocol
import OverseerSystem

/// Fetching from a URL with overseerd-fetch, and taking what it downloaded.
extension UpgradeDriver {
    /// The HTTP validators of the last download, sent so that an unchanged binary
    /// is not downloaded again; with `--manifest`, the manifest's own wait apart
    /// until its release is dealt with.
    struct FetchValidators {
        var etag: String?
        var lastModified: String?
        /// The manifest's validators, kept for the next poll once its release is dealt with.
        var manifest: (etag: String?, lastModified: String?) = (nil, nil)

        /// overseerd-fetch's arguments for a conditional request.
        var arguments: [String] {
            var arguments: [String] = []
            if let etag { arguments += ["--etag", etag] }
            if let lastModified { arguments += ["--last-modified", lastModified] }
            return arguments
        }

        mutating func remember(etag: String?, lastModified: String?) {
            self.etag = etag
            self.lastModified = lastModified
        }

        /// Remembered now, used once the manifest's release is dealt with (a 304 before
        /// its binary was fetched would leave the release behind for good).
        mutating func noteManifest(etag: String?, lastModified: String?) {
            manifest = (etag, lastModified)
            self.etag = nil
            self.lastModified = nil
        }

        /// The manifest needs nothing fetched: the next poll asks with its validators.
        mutating func keepManifest() {
            etag = manifest.etag
            // With an ETag, If-Modified-Since adds nothing but a risk: a manifest replaced
            // within the same second has the same Last-Modified (S3 emulators answer 304 to it).
            lastModified = etag == nil ? manifest.lastModified : nil
        }

        /// The manifest's release is installed: the next poll asks with the manifest's validators.
        mutating func adoptManifest() {
            etag = manifest.etag
            lastModified = manifest.lastModified
        }
    }

    /// Runs overseerd-fetch for `url` into `staging`; `conditional` sends the validators of the last download.
    func startNetworkFetch(_ url: String, conditional: Bool, maxSize: Int64, sidecars wanted: [String],
                           into staging: StagingFile, completion: @escaping (HelperResult) -> Void) {
        guard let helper = plan.fetchHelper else {
            feed(.abandoned(reason: "no overseerd-fetch to fetch \(url) with"))
            return
        }
        let limit = settings.fetchTimeout
        var arguments = [helper, "--output-fd", "3", "--max-size", String(maxSize),
                         "--max-time", String(max(1, limit.totalNanoseconds / 1_000_000_000))]
        if conditional { arguments += validators.arguments }
        for suffix in wanted { arguments += ["--sidecar", suffix] }
        if let endpoint = settings.s3Endpoint { arguments += ["--s3-endpoint", endpoint] }
        if let api = settings.githubAPIURL { arguments += ["--github-api-url", api] }
        if let pattern = settings.assetPattern { arguments += ["--asset-pattern", pattern] }
        arguments.append(url)
        // Its own --max-time ends a slow transfer; this ends a helper that hangs anyway.
        let request = HelperRequest(label: "overseerd-fetch", arguments: arguments, environment: host.inheritableEnvironment,
                                    extraFD: staging.fd, user: plan.fetchUser, timeout: limit + .seconds(5))
        do {
            try helpers.start(request, completion: completion)
        } catch {
            feed(.fetchFailed(reason: "cannot start \(helper): \(error)"))
        }
    }

    func fetchFinished(_ result: HelperResult, keepsValidators: Bool) {
        let line = result.output.split(separator: "\n").last.map(String.init) ?? ""
        guard let report = try? FetchReport(parsing: line) else {
            feed(.fetchFailed(reason: "overseerd-fetch ended with \(result.exit)\(result.timedOut ? " (killed at its deadline)" : "") and no report"))
            return
        }
        switch (result.exit, report.result) {
        case (.exited(0), .notModified):
            feed(.unchanged)
        case (.exited(0), .downloaded):
            guard let staging else {
                feed(.abandoned(reason: "the download's staging file is gone"))
                return
            }
            let size: Int64
            do {
                try staging.seal()
                size = try staging.size()
            } catch {
                feed(.fetchFailed(reason: "cannot read back the download in \(staging.path): \(error)"))
                return
            }
            let reported: String
            switch UpgradeVerification.fetchedHash(reported: report.sha256, reportedSize: report.bytes, stagedSize: size,
                                                   limit: settings.maxBinarySize, expectedSize: manifestTracking.pendingSize) {
            case let .success(sha256): reported = sha256
            case let .failure(rejection):
                feed(.fetchFailed(reason: rejection.description))
                return
            }
            // overseerd-fetch parses TLS and HTTP from the network: a pinned --sha256 is
            // checked against bytes overseerd hashes itself, not against what it reports.
            let path = staging.path
            do {
                try inBackground({ () -> Result<String, SystemError> in
                    Result { () throws(SystemError) in try BinaryIdentity.sha256(ofFileAt: path) }
                }, then: { [unowned self] hashed in
                    switch hashed {
                    case let .success(sha256) where sha256 == reported:
                        if keepsValidators { validators.remember(etag: report.etag, lastModified: report.lastModified) }
                        for suffix in [".sha256", ".minisig"] {
                            if let text = report.sidecar(suffix) { sidecars[suffix] = text }
                        }
                        fetched(sha256)
                    case let .success(sha256):
                        feed(.fetchFailed(reason: "overseerd-fetch reported sha256 \(reported.prefix(16))… but the staged bytes hash to \(sha256.prefix(16))…"))
                    case let .failure(error):
                        feed(.fetchFailed(reason: "cannot read the download back from \(path) to hash it: \(error.reason)"))
                    }
                })
            } catch {
                feed(.fetchFailed(reason: "cannot start hashing the download: \(error)"))
            }
        default:
            // overseerd-fetch's message can quote what a server sent: escaped, bounded.
            var reason = report.message.map { EscapedText.escape($0) } ?? "overseerd-fetch ended with \(result.exit)"
            if report.kind == "size", let size = manifestTracking.pendingSize, size <= settings.maxBinarySize {
                reason = "the binary is longer than the manifest's \"size\" \(size): refused without reading it whole (\(reason))"
            }
            if keepsValidators, report.kind == "size", report.etag != nil || report.lastModified != nil {
                // Like a rejected hash: the same body is not downloaded again, the next poll asks with its validators.
                validators.remember(etag: report.etag, lastModified: report.lastModified)
                reason += "; not downloaded again until it changes"
            }
            feed(.fetchFailed(reason: reason))
        }
    }
}

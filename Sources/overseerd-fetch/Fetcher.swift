import OverseerProtocol

/// Runs one poll: the conditional GET of the binary (after the release lookup for GitHub),
/// then its sidecars, and says what happened as a report.
struct Fetcher {
    /// The most a sidecar may hold.
    static let sidecarLimit = 64 * 1024
    /// The most a release JSON may hold.
    static let releaseJSONLimit = 8 * 1024 * 1024

    var options: FetchOptions
    var output: OutputDescriptor
    var environment: (String) -> String? = Environment.value

    func run() throws(FetchFailure) -> FetchReport {
        let client = try HTTPClient(limits: options)
        switch options.source {
        case let .http(url):
            var request = HTTPRequest(url: url)
            request.addConditions(etag: options.etag, lastModified: options.lastModified)
            return try fetchBinary(request, client: client) { suffix in
                HTTPRequest(url: URLText.appendingToPath(url, suffix))
            }
        case let .s3(bucket, key):
            let object = S3Object(bucket: bucket, key: key, options: options, environment: environment)
            var request = object.request()
            request.addConditions(etag: options.etag, lastModified: options.lastModified)
            return try fetchBinary(request, client: client) { suffix in object.request(suffix: suffix) }
        case let .github(owner, repo):
            let repository = GitHubRepository(owner: owner, repo: repo, apiURL: options.githubAPIURL,
                                              token: environment("GITHUB_TOKEN"))
            return try fetchRelease(repository, client: client)
        }
    }

    /// GETs `request` into the output, then each sidecar from `sidecarRequest(suffix)`.
    private func fetchBinary(_ request: HTTPRequest, client: HTTPClient, extraFields: [String: JSONValue] = [:],
                             sidecarRequest: (String) throws(FetchFailure) -> HTTPRequest) throws(FetchFailure) -> FetchReport {
        let sink = FileBodySink(output: output, maxSize: options.maxSize,
                                inflatesGzipPath: URLText.pathEndsInGz(request.url), name: request.name)
        switch try client.get(request, into: sink) {
        case let .notModified(headers):
            return notModified(headers)
        case let .completed(headers, url):
            var fields = extraFields
            fields["bytes"] = .integer(sink.written)
            fields["sha256"] = .string(sink.digest())
            fields["url"] = .string(url)
            if let etag = headers.etag { fields["etag"] = .string(etag) }
            if let lastModified = headers.lastModified { fields["last_modified"] = .string(lastModified) }
            for suffix in options.sidecars {
                fields["sidecar:" + suffix] = .string(try fetchSidecar(try sidecarRequest(suffix), client: client))
            }
            return FetchReport(result: .downloaded, fields: fields)
        }
    }

    private func fetchSidecar(_ request: HTTPRequest, client: HTTPClient) throws(FetchFailure) -> String {
        let sink = MemoryBodySink(limit: Self.sidecarLimit) { announced in
            FetchFailure(.sidecar, "GET \(request.name): the sidecar is " + (announced.map { "\($0) bytes, " } ?? "")
                + "over the \(Self.sidecarLimit)-byte limit for sidecars (is this URL really a checksum or signature?)")
        }
        do throws(FetchFailure) {
            guard case .completed = try client.get(request, into: sink) else {
                throw FetchFailure(.sidecar, status: 304, "GET \(request.name) answered 304 to a request without conditions")
            }
        } catch {
            guard error.kind == .http, error.status == 404 || error.status == 410 else { throw error }
            throw FetchFailure(.sidecar, status: error.status, "GET \(request.name) answered \(error.status!): "
                + "the sidecar is missing (publish it beside the binary, or stop asking for it)")
        }
        return sink.text
    }

    private func fetchRelease(_ repository: GitHubRepository, client: HTTPClient) throws(FetchFailure) -> FetchReport {
        let request = repository.latestReleaseRequest(etag: options.etag, lastModified: options.lastModified)
        let sink = MemoryBodySink(limit: Self.releaseJSONLimit) { _ in
            FetchFailure(.format, "GET \(request.name): the release JSON is over \(Self.releaseJSONLimit) bytes")
        }
        let releaseHeaders: ResponseHeaders
        switch try client.get(request, into: sink) {
        case let .notModified(headers): return notModified(headers)
        case let .completed(headers, _): releaseHeaders = headers
        }
        let release: GitHubRelease
        do throws(FetchFailure) {
            release = try GitHubRelease(json: sink.bytes)
        } catch {
            throw FetchFailure(.format, "GET \(request.name): not a GitHub release: \(error.message)")
        }
        var selector = AssetSelector(pattern: options.assetPattern)
        selector.sidecarSuffixes += options.sidecars
        let asset = try selector.select(from: release, repository: repository.name)

        // The daemon keeps the release JSON's validators: they are what the next poll sends.
        var fields: [String: JSONValue] = ["tag": .string(release.tag), "asset": .string(asset.name)]
        fields["etag"] = releaseHeaders.etag.map(JSONValue.string)
        fields["last_modified"] = releaseHeaders.lastModified.map(JSONValue.string)
        var report: FetchReport
        do throws(FetchFailure) {
            report = try fetchBinary(HTTPRequest(url: asset.downloadURL), client: client, extraFields: fields) {
                suffix throws(FetchFailure) in
                guard let sidecar = release.assets.first(where: { $0.name == asset.name + suffix }) else {
                    throw FetchFailure(.sidecar, "release \(release.tag) of \(repository.name) has no asset "
                        + "\(asset.name + suffix) (publish it with the release, or stop asking for it)")
                }
                return HTTPRequest(url: sidecar.downloadURL)
            }
        } catch where error.kind == .size {
            // The next poll asks for the release JSON: its validators, not the asset's, say "the same".
            var failure = error
            failure.etag = releaseHeaders.etag
            failure.lastModified = releaseHeaders.lastModified
            throw failure
        }
        // The asset's own validators would mean nothing on the next poll.
        report.fields["etag"] = releaseHeaders.etag.map(JSONValue.string)
        report.fields["last_modified"] = releaseHeaders.lastModified.map(JSONValue.string)
        return report
    }

    /// A 304: echo the validators, the server's if it sent them, else the ones we sent.
    private func notModified(_ headers: ResponseHeaders) -> FetchReport {
        var fields: [String: JSONValue] = [:]
        if let etag = headers.etag ?? options.etag { fields["etag"] = .string(etag) }
        if let lastModified = headers.lastModified ?? options.lastModified { fields["last_modified"] = .string(lastModified) }
        return FetchReport(result: .notModified, fields: fields)
    }
}

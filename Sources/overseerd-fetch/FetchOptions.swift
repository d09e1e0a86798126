/// Everything the command line says, with the documented defaults.
struct FetchOptions: Equatable {
    var source: FetchSource
    /// The original URL argument, for messages.
    var sourceText: String
    var outputFD: Int32 = 3
    var etag: String?
    var lastModified: String?
    var maxSize: Int64 = 1 << 30
    var connectTimeoutMilliseconds: Int = 10_000
    var lowSpeedTimeSeconds: Int = 30
    var maxTimeMilliseconds: Int = 3_600_000
    var maxRedirects: Int = 5
    /// Suffixes of small files fetched beside the binary, in the order given.
    var sidecars: [String] = []
    var s3Endpoint: String?
    var s3Region: String?
    var githubAPIURL: String = "https://api.github.com"
    var assetPattern: String?

    init(source: FetchSource, sourceText: String) {
        self.source = source
        self.sourceText = sourceText
    }
}

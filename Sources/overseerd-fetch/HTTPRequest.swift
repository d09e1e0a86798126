/// One GET to make: where, with which headers, and how it is signed.
struct HTTPRequest {
    /// The URL libcurl fetches.
    var url: String
    /// How messages name it (`s3://bucket/key` for S3, else the URL).
    var name: String
    /// Extra header lines (`Name: value`).
    var headers: [String] = []
    /// AWS Signature V4, for S3.
    var signing: AWSSigning?

    init(url: String, name: String? = nil) {
        self.url = url
        self.name = name ?? url
    }

    /// Adds If-None-Match / If-Modified-Since for what the daemon has already.
    mutating func addConditions(etag: String?, lastModified: String?) {
        // An empty value means "none": libcurl would otherwise send an empty header.
        if let etag, !etag.isEmpty { headers.append("If-None-Match: " + etag) }
        if let lastModified, !lastModified.isEmpty { headers.append("If-Modified-Since: " + lastModified) }
    }
}

/// What libcurl needs to sign a request with AWS Signature V4 (CURLOPT_AWS_SIGV4).
struct AWSSigning: Equatable {
    var region: String
    var accessKeyID: String
    var secretAccessKey: String

    /// The CURLOPT_AWS_SIGV4 value: provider1:provider2:region:service.
    var curlParameter: String { "aws:amz:\(region):s3" }
}

/// An S3 object to GET, with the endpoint, region and credentials of the environment.
struct S3Object {
    var bucket: String
    var key: String
    var region: String
    /// Path-style endpoint (`http://127.0.0.1:9000`); nil for AWS's virtual-hosted one.
    var endpoint: String?
    var accessKeyID: String?
    var secretAccessKey: String?
    var sessionToken: String?

    /// Region and credentials from the options, then AWS_REGION, AWS_DEFAULT_REGION, us-east-1,
    /// and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN.
    init(bucket: String, key: String, options: FetchOptions, environment: (String) -> String? = Environment.value) {
        self.bucket = bucket
        self.key = key
        region = options.s3Region ?? environment("AWS_REGION") ?? environment("AWS_DEFAULT_REGION") ?? "us-east-1"
        endpoint = options.s3Endpoint
        accessKeyID = environment("AWS_ACCESS_KEY_ID")
        secretAccessKey = environment("AWS_SECRET_ACCESS_KEY")
        sessionToken = environment("AWS_SESSION_TOKEN")
    }

    static let emptyPayloadSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// The GET for this object, or for the object named key+`suffix`.
    func request(suffix: String = "") -> HTTPRequest {
        let path = URLText.encodingPath(key + suffix)
        let url = if let endpoint {
            URLText.trimmingSlashes(endpoint) + "/" + bucket + "/" + path
        } else {
            "https://\(bucket).s3.\(region).amazonaws.com/" + path
        }
        var request = HTTPRequest(url: url, name: "s3://\(bucket)/\(key)\(suffix) (\(url))")
        // Without credentials the request goes unsigned, which a public bucket allows.
        if let accessKeyID, let secretAccessKey {
            request.signing = AWSSigning(region: region, accessKeyID: accessKeyID, secretAccessKey: secretAccessKey)
            // S3 wants the payload hash as a header on every SigV4 request, and libcurl 7.88
            // does not add it: the SHA-256 of the empty body of a GET. libcurl signs it along
            // with every other header we set.
            request.headers.append("x-amz-content-sha256: " + Self.emptyPayloadSHA256)
            if let sessionToken { request.headers.append("x-amz-security-token: " + sessionToken) }
        }
        return request
    }
}

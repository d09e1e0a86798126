extension ReleaseManifest {
    /// The schemes a manifest fetched over the network may name: never a local file.
    static let networkSchemes: Set<String> = ["http", "https", "s3"]

    /// The binary's URL for this host: `{os}` and `{arch}` filled in, then
    /// resolved against `manifestURL` as RFC 3986 section 5.2 says.
    ///
    /// - A manifest fetched over the network (`http(s)://`, `s3://`) only names
    ///   network URLs: `/rel/app` and `//host/app` stay on its scheme (and host),
    ///   `file:` or a bare path is refused.
    /// - On `s3://` (read path-style: ENDPOINT/BUCKET/KEY) a url whose `..`
    ///   reaches above the bucket, or that hides a dot or slash in percent
    ///   encoding or a backslash, is refused: the endpoint would read another bucket.
    /// - A local manifest (a path) names a local path (relative to its
    ///   directory, or absolute, or `file:///…`) or an `http(s)://` / `s3://` URL.
    public func binaryURL(manifestURL: String, os: String, arch: String) throws(ProtocolError) -> String {
        let filled = url.replacing("{os}", with: os).replacing("{arch}", with: arch)
        let reference = URIReference(parsing: filled)
        let base = URIReference(parsing: manifestURL)
        guard let baseScheme = base.scheme, Self.networkSchemes.contains(baseScheme) else {
            return try localBinaryURL(filled, reference: reference, manifestPath: manifestURL)
        }
        let shown = EscapedText.escape(filled, limit: 256)
        let resolution = reference.resolved(against: base)
        var target = resolution.target
        target.fragment = nil
        guard let scheme = target.scheme, Self.networkSchemes.contains(scheme) else {
            throw ProtocolError("the manifest's \"url\" \(shown) names a \(target.scheme ?? "local") URL: a manifest fetched over the network may only name http(s):// or s3:// URLs")
        }
        guard let authority = target.authority, !authority.isEmpty else {
            throw ProtocolError("the manifest's \"url\" \(shown) names no host or bucket")
        }
        if scheme == "s3" {
            if resolution.climbedAboveRoot {
                throw ProtocolError("the manifest's \"url\" \(shown) climbs above the bucket \(EscapedText.escape(authority, limit: 128)) with \"..\": name a key in it, or write s3://BUCKET/KEY")
            }
            let lowered = filled.lowercased()
            if lowered.contains("%2e") || lowered.contains("%2f") || lowered.contains("%5c") || filled.contains("\\") {
                throw ProtocolError("the manifest's \"url\" \(shown) hides a dot or slash in percent encoding, or holds a backslash: an s3 endpoint may decode it and read another bucket; write the key plainly")
            }
        }
        return target.text
    }

    /// A local manifest's binary: a path, or a network URL it names outright.
    private func localBinaryURL(_ filled: String, reference: URIReference, manifestPath: String) throws(ProtocolError) -> String {
        let shown = EscapedText.escape(filled, limit: 256)
        if let scheme = reference.scheme {
            if Self.networkSchemes.contains(scheme) { return filled }
            if scheme == "file", reference.authority?.isEmpty ?? true, reference.path.hasPrefix("/") {
                return URIReference.removeDotSegments(reference.path).path
            }
            throw ProtocolError("the manifest's \"url\" \(shown) has the scheme \(EscapedText.escape(scheme, limit: 32)): give a path, file:///PATH, http(s):// or s3://")
        }
        if filled.hasPrefix("//") {
            throw ProtocolError("the manifest's \"url\" \(shown) names a host without a scheme: write http(s)://HOST/PATH")
        }
        // Taken literally (a file name may hold "?" or "#"), only its dot segments removed.
        if filled.hasPrefix("/") { return URIReference.removeDotSegments(filled).path }
        guard let slash = manifestPath.lastIndex(of: "/") else { return URIReference.removeDotSegments(filled).path }
        return URIReference.removeDotSegments(String(manifestPath[...slash]) + filled).path
    }
}

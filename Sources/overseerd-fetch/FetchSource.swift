/// What the URL argument names.
enum FetchSource: Equatable {
    /// An `http://` or `https://` URL, fetched as is.
    case http(String)
    /// `s3://BUCKET/KEY`.
    case s3(bucket: String, key: String)
    /// `github:OWNER/REPO`: the latest release's asset for this machine.
    case github(owner: String, repo: String)

    /// Parses the URL argument; nil when it is none of the supported forms.
    init?(parsing text: String) {
        let lower = text.lowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            let afterScheme = text.drop(while: { $0 != ":" }).dropFirst(3)
            guard let first = afterScheme.first, first != "/", first != "?", first != "#",
                  !text.contains(where: { $0 == " " || $0.isNewline }) else { return nil }
            self = .http(text)
        } else if lower.hasPrefix("s3://") {
            let rest = text.dropFirst(5)
            guard let slash = rest.firstIndex(of: "/") else { return nil }
            let bucket = String(rest[..<slash]), key = String(rest[rest.index(after: slash)...])
            guard !bucket.isEmpty, !key.isEmpty, bucket.allSatisfy(FetchSource.isBucketCharacter),
                  !key.contains(where: \.isNewline) else { return nil }
            self = .s3(bucket: bucket, key: key)
        } else if lower.hasPrefix("github:") {
            let parts = text.dropFirst(7).split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(FetchSource.isGitHubNameCharacter) })
            else { return nil }
            self = .github(owner: String(parts[0]), repo: String(parts[1]))
        } else {
            return nil
        }
    }

    private static func isBucketCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "." || c == "_")
    }

    private static func isGitHubNameCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "." || c == "_")
    }
}

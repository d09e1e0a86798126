/// A GitHub repository whose latest release is fetched.
struct GitHubRepository {
    var owner: String
    var repo: String
    var apiURL: String
    var token: String?

    /// `OWNER/REPO`, for messages.
    var name: String { owner + "/" + repo }

    /// GET {api}/repos/OWNER/REPO/releases/latest, as the REST API documents it.
    func latestReleaseRequest(etag: String?, lastModified: String?) -> HTTPRequest {
        var request = HTTPRequest(url: URLText.trimmingSlashes(apiURL) + "/repos/\(owner)/\(repo)/releases/latest")
        request.headers = ["Accept: application/vnd.github+json", "X-GitHub-Api-Version: 2022-11-28"]
        if let token { request.headers.append("Authorization: Bearer " + token) }
        request.addConditions(etag: etag, lastModified: lastModified)
        return request
    }
}

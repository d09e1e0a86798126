import OverseerProtocol

/// The parts of a GitHub "latest release" answer that overseerd-fetch uses.
struct GitHubRelease: Equatable {
    struct Asset: Equatable {
        var name: String
        var downloadURL: String
    }

    var tag: String
    var assets: [Asset]

    /// Reads `tag_name` and `assets[].name` / `assets[].browser_download_url`; other members are ignored.
    init(json bytes: [UInt8]) throws(FetchFailure) {
        let root: JSONNode
        do {
            root = try JSONScanner.parse(bytes)
        } catch {
            throw FetchFailure(.format, error.description)
        }
        guard case .object = root else { throw FetchFailure(.format, "the answer is not a JSON object") }
        guard let tag = root["tag_name"]?.stringValue else { throw FetchFailure(.format, "no \"tag_name\" string") }
        guard case let .array(items)? = root["assets"] else { throw FetchFailure(.format, "no \"assets\" array") }
        var assets: [Asset] = []
        for item in items {
            guard let name = item["name"]?.stringValue, let url = item["browser_download_url"]?.stringValue else {
                throw FetchFailure(.format, "an asset without \"name\" or \"browser_download_url\"")
            }
            assets.append(Asset(name: name, downloadURL: url))
        }
        self.tag = tag
        self.assets = assets
    }

    init(tag: String, assets: [Asset]) {
        self.tag = tag
        self.assets = assets
    }
}

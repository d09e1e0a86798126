/// A release manifest: which binary a fleet should run, and to how many of
/// its hosts it is offered. JSON, polled like `--fetch`:
///
/// ```json
/// {"version": "2.0.0", "url": "app-2.0.0-{os}-{arch}", "sha256": "<hex>",
///  "staging_percent": 30, "yanked": ["1.9.0"]}
/// ```
/// Unknown members are ignored, so a manifest can carry more than overseerd reads.
public struct ReleaseManifest: Equatable, Sendable {
    /// The largest manifest read.
    public static let maximumSize = 1 << 20

    public var version: String
    /// Absolute, or relative to the manifest's own URL; `{os}` and `{arch}` are filled in.
    public var url: String
    /// Lower-case hex.
    public var sha256: String
    /// 0–100: a host takes the release when its bucket is below this.
    public var stagingPercent: Int
    /// Versions that must not run.
    public var yanked: [String]

    public init(version: String, url: String, sha256: String, stagingPercent: Int = 100, yanked: [String] = []) {
        self.version = version
        self.url = url
        self.sha256 = sha256
        self.stagingPercent = stagingPercent
        self.yanked = yanked
    }

    /// Parses a manifest; a malformed one throws with one line saying what is wrong.
    public init(parsing bytes: [UInt8]) throws(ProtocolError) {
        guard bytes.count <= Self.maximumSize else {
            throw ProtocolError("the manifest is \(bytes.count) bytes, over the \(Self.maximumSize)-byte limit")
        }
        let root: JSONNode
        do {
            root = try JSONScanner.parse(bytes)
        } catch {
            throw ProtocolError("the manifest is not JSON: \(error)")
        }
        guard case .object = root else { throw ProtocolError("the manifest is not a JSON object") }
        if let key = root.repeatedKey {
            throw ProtocolError("the manifest has the key \"\(EscapedText.escape(key, limit: 64))\" twice in one object: refused, as JSON readers differ on which counts")
        }
        func text(_ key: String, required: Bool) throws(ProtocolError) -> String? {
            guard let node = root[key] else {
                if required { throw ProtocolError("the manifest has no \"\(key)\"") }
                return nil
            }
            guard let value = node.stringValue, !value.isEmpty else { throw ProtocolError("the manifest's \"\(key)\" is not a non-empty string") }
            guard value.utf8.count <= 2048, !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
                throw ProtocolError("the manifest's \"\(key)\" is too long or holds control characters")
            }
            return value
        }
        let version = try text("version", required: true)!
        guard version.utf8.count <= 128 else { throw ProtocolError("the manifest's \"version\" is over 128 bytes") }
        let url = try text("url", required: true)!
        let sha256 = try text("sha256", required: true)!.lowercased()
        guard SHA256Hex.isValid(sha256) else {
            throw ProtocolError("the manifest's \"sha256\" is not 64 hex digits")
        }
        var percent = 100
        if let node = root["staging_percent"] {
            guard case let .number(digits) = node, let value = Int(digits), (0 ... 100).contains(value) else {
                throw ProtocolError("the manifest's \"staging_percent\" is not a whole number from 0 to 100")
            }
            percent = value
        }
        var yanked: [String] = []
        if let node = root["yanked"] {
            guard case let .array(items) = node else { throw ProtocolError("the manifest's \"yanked\" is not a list") }
            for item in items {
                guard let value = item.stringValue else { throw ProtocolError("the manifest's \"yanked\" holds something other than version strings") }
                yanked.append(value)
            }
        }
        self.init(version: version, url: url, sha256: sha256, stagingPercent: percent, yanked: yanked)
    }
}

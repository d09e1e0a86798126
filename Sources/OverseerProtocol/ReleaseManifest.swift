/// A release manifest: which binary a fleet should run, and to how many of
/// its hosts it is offered. JSON, polled like `--fetch`:
///
/// ```json
/// {"name": "app", "sequence": 42, "expires": "2027-01-31T00:00:00Z",
///  "version": "2.0.0", "url": "app-2.0.0-{os}-{arch}", "sha256": "<hex>", "size": 7340032,
///  "staging_percent": 30, "yanked": ["1.9.0"]}
/// ```
/// Unknown members are ignored, so a manifest can carry more than overseerd reads.
/// `name`, `sequence`, `size`, `expires`, `keys` and `signatures_required` are
/// judged by `ManifestTrust` (docs/PROTOCOL.md; the schema is docs/release-manifest.schema.json).
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
    /// The product this manifest releases; must equal `--release-name`.
    public var name: String?
    /// Raised by the publisher on every change: a lower one is a replay.
    public var sequence: UInt64?
    /// The binary's exact length in bytes.
    public var size: Int64?
    /// When the manifest stops being valid, seconds since the epoch (from RFC 3339 UTC).
    public var expires: Int64?
    /// A key rotation: the minisign public keys (base64 lines) to trust from now on.
    public var keys: [String]?
    /// With `keys`: how many of them must sign (default 1).
    public var signaturesRequired: Int?

    /// The most keys a rotation may name.
    public static let maximumKeys = 16

    public init(version: String, url: String, sha256: String, stagingPercent: Int = 100, yanked: [String] = [],
                name: String? = nil, sequence: UInt64? = nil, size: Int64? = nil, expires: Int64? = nil,
                keys: [String]? = nil, signaturesRequired: Int? = nil) {
        self.version = version
        self.url = url
        self.sha256 = sha256
        self.stagingPercent = stagingPercent
        self.yanked = yanked
        self.name = name
        self.sequence = sequence
        self.size = size
        self.expires = expires
        self.keys = keys
        self.signaturesRequired = signaturesRequired
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
        name = try text("name", required: false)
        if let name, name.utf8.count > 128 { throw ProtocolError("the manifest's \"name\" is over 128 bytes") }
        func whole(_ key: String, _ range: ClosedRange<UInt64>, _ what: String) throws(ProtocolError) -> UInt64? {
            guard let node = root[key] else { return nil }
            guard case let .number(digits) = node, digits.utf8.count <= 20, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let value = UInt64(digits), range.contains(value) else {
                throw ProtocolError("the manifest's \"\(key)\" is not \(what)")
            }
            return value
        }
        sequence = try whole("sequence", 1 ... UInt64(Int64.max), "a whole number from 1 to 2^63-1")
        size = try whole("size", 1 ... UInt64(Int64.max), "a whole number of bytes above 0").map { Int64($0) }
        if let text = try text("expires", required: false) {
            guard let seconds = RFC3339.parse(text) else {
                throw ProtocolError("the manifest's \"expires\" is not an RFC 3339 time such as 2027-01-31T00:00:00Z")
            }
            expires = seconds
        }
        if let node = root["keys"] {
            guard case let .array(items) = node, !items.isEmpty, items.count <= Self.maximumKeys else {
                throw ProtocolError("the manifest's \"keys\" is not a list of 1 to \(Self.maximumKeys) minisign public keys")
            }
            keys = try items.map { item throws(ProtocolError) in
                guard let key = item.stringValue, (1 ... 128).contains(key.utf8.count),
                      key.utf8.allSatisfy({ $0 < 0x80 && ($0 == 0x2b || $0 == 0x2f || $0 == 0x3d || (0x30 ... 0x39).contains($0) || (0x41 ... 0x5a).contains($0) || (0x61 ... 0x7a).contains($0)) }) else {
                    throw ProtocolError("the manifest's \"keys\" holds something other than minisign public keys (their base64 line)")
                }
                return key
            }
        }
        signaturesRequired = try whole("signatures_required", 1 ... UInt64(Self.maximumKeys), "a whole number from 1 to \(Self.maximumKeys)").map { Int($0) }
        if signaturesRequired != nil, keys == nil {
            throw ProtocolError("the manifest has \"signatures_required\" without \"keys\": a rotation names both")
        }
    }
}

/// A URI reference split into its five parts, and its resolution against a
/// base URI, as RFC 3986 section 5.2 says (absolute, network-path, absolute-path
/// and relative-path references; dot segments removed). Pure text work: no
/// percent-decoding, no normalisation beyond what section 5.2 asks for.
public struct URIReference: Equatable, Sendable {
    /// Lower-cased; nil for a relative reference.
    public var scheme: String?
    /// What follows `//` (userinfo, host, port); nil when there is no `//`.
    public var authority: String?
    public var path: String
    public var query: String?
    public var fragment: String?

    public init(scheme: String? = nil, authority: String? = nil, path: String, query: String? = nil, fragment: String? = nil) {
        self.scheme = scheme
        self.authority = authority
        self.path = path
        self.query = query
        self.fragment = fragment
    }

    /// Splits `text` the way RFC 3986 appendix B does (every string is some reference).
    public init(parsing text: String) {
        var rest = Substring(text)
        if let hash = rest.firstIndex(of: "#") {
            fragment = String(rest[rest.index(after: hash)...])
            rest = rest[..<hash]
        }
        if let mark = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: mark)...])
            rest = rest[..<mark]
        }
        // A scheme is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) before the first ":",
        // which must come before any "/".
        if let colon = rest.firstIndex(of: ":"), !rest[..<colon].contains("/") {
            let candidate = rest[..<colon]
            func isLetter(_ byte: UInt8) -> Bool { (0x41 ... 0x5A).contains(byte) || (0x61 ... 0x7A).contains(byte) }
            func isSchemeByte(_ byte: UInt8) -> Bool { isLetter(byte) || (0x30 ... 0x39).contains(byte) || byte == 0x2B || byte == 0x2D || byte == 0x2E }
            if let first = candidate.utf8.first, isLetter(first), candidate.utf8.allSatisfy(isSchemeByte) {
                scheme = candidate.lowercased()
                rest = rest[rest.index(after: colon)...]
            }
        }
        if rest.hasPrefix("//") {
            let afterSlashes = rest.dropFirst(2)
            let end = afterSlashes.firstIndex(of: "/") ?? afterSlashes.endIndex
            authority = String(afterSlashes[..<end])
            rest = afterSlashes[end...]
        }
        path = String(rest)
    }

    /// The reference written out again (RFC 3986 section 5.3).
    public var text: String {
        var result = ""
        if let scheme { result += scheme + ":" }
        if let authority { result += "//" + authority }
        result += path
        if let query { result += "?" + query }
        if let fragment { result += "#" + fragment }
        return result
    }

    /// What `resolved(against:)` found besides the target.
    public struct Resolution: Equatable, Sendable {
        public var target: URIReference
        /// A `..` segment had nothing left to remove: the reference reached above the root.
        public var climbedAboveRoot: Bool
    }

    /// This reference resolved against `base` (RFC 3986 section 5.2.2, strict: a
    /// scheme in the reference is taken as its own, even when it is the base's).
    public func resolved(against base: URIReference) -> Resolution {
        var target = URIReference(path: "")
        var climbed = false
        func removing(_ path: String) -> String {
            let (clean, above) = Self.removeDotSegments(path)
            climbed = climbed || above
            return clean
        }
        if let scheme {
            target = URIReference(scheme: scheme, authority: authority, path: removing(path), query: query)
        } else {
            if let authority {
                target = URIReference(authority: authority, path: removing(path), query: query)
            } else {
                if path.isEmpty {
                    target.path = base.path
                    target.query = query ?? base.query
                } else {
                    target.path = path.hasPrefix("/") ? removing(path) : removing(Self.merge(base: base, path: path))
                    target.query = query
                }
                target.authority = base.authority
            }
            target.scheme = base.scheme
        }
        target.fragment = fragment
        return Resolution(target: target, climbedAboveRoot: climbed)
    }

    /// RFC 3986 section 5.2.3.
    static func merge(base: URIReference, path: String) -> String {
        if base.authority != nil && base.path.isEmpty { return "/" + path }
        guard let slash = base.path.lastIndex(of: "/") else { return path }
        return String(base.path[...slash]) + path
    }

    /// RFC 3986 section 5.2.4, and whether a `..` found nothing left to remove.
    public static func removeDotSegments(_ path: String) -> (path: String, climbedAboveRoot: Bool) {
        var input = Substring(path)
        var output: [Substring] = []  // each segment with its leading "/" (the first may have none)
        var climbed = false
        while !input.isEmpty {
            if input.hasPrefix("../") {
                input = input.dropFirst(3)
                climbed = true
            } else if input.hasPrefix("./") {
                input = input.dropFirst(2)
            } else if input.hasPrefix("/./") {
                input = input.dropFirst(2)
            } else if input == "/." {
                input = "/"
            } else if input.hasPrefix("/../") || input == "/.." {
                input = input == "/.." ? "/" : input.dropFirst(3)
                if output.isEmpty { climbed = true } else { output.removeLast() }
            } else if input == "." || input == ".." {
                if input == ".." { climbed = true }
                input = ""
            } else {
                let start = input.hasPrefix("/") ? input.index(after: input.startIndex) : input.startIndex
                let end = input[start...].firstIndex(of: "/") ?? input.endIndex
                output.append(input[..<end])
                input = input[end...]
            }
        }
        return (output.joined(), climbed)
    }
}

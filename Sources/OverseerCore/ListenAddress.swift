import OverseerProtocol

/// Where a listener binds, as written after `--listen`.
public enum ListenAddress: Equatable, Sendable, CustomStringConvertible {
    /// TCP or UDP on `host` (nil: every interface, IPv4 and IPv6) and `port` (0: any free port).
    case inet(host: String?, port: UInt16, transport: Transport)
    /// A unix stream socket; a path starting with `@` is in the abstract namespace.
    case unix(path: String)

    public enum Transport: Equatable, Sendable {
        case stream, datagram
    }

    /// The longest unix socket path: sun_path holds 108 bytes with the NUL.
    public static let maximumUnixPathLength = 107

    public var description: String {
        switch self {
        case let .inet(host, port, transport):
            let prefix = transport == .datagram ? "udp:" : ""
            guard let host else { return "\(prefix):\(port)" }
            // Brackets also for a host that would not parse back without them: `[tcp]:80`
            // (not tcp:80, port 80 on every interface), `[[]:80`, `[a b]:80`.
            let plain = "\(prefix)\(host):\(port)"
            if !host.contains(":"), (try? ListenAddress(parsing: plain)) == self { return plain }
            return "\(prefix)[\(host)]:\(port)"
        case let .unix(path):
            return "unix:\(path)"
        }
    }

    /// Parses `HOST:PORT`, `[V6ADDR]:PORT`, `:PORT`, `PORT`, `tcp:…`, `udp:HOST:PORT` or `unix:/path`.
    public init(parsing text: String) throws(ConfigurationError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty, path != "@" else {
                throw ConfigurationError("bad listen address \"\(text)\": unix: needs a path, e.g. unix:/run/app/app.sock")
            }
            guard path.utf8.count <= Self.maximumUnixPathLength else {
                throw ConfigurationError("bad listen address \"\(text)\": a unix socket path can be at most \(Self.maximumUnixPathLength) bytes long")
            }
            guard !path.utf8.contains(0) else {
                throw ConfigurationError("bad listen address \"\(text)\": the path contains a NUL byte")
            }
            self = .unix(path: path)
            return
        }
        var rest = Substring(text)
        var transport = Transport.stream
        if rest.hasPrefix("udp:") {
            transport = .datagram
            rest = rest.dropFirst(4)
        } else if rest.hasPrefix("tcp:") {
            rest = rest.dropFirst(4)
        }
        let (host, portText) = try Self.splitHostPort(rest, whole: text)
        if let host, host.contains("=") {
            throw ConfigurationError("bad listen address \"\(text)\": a host name cannot contain '=' (a listener takes one NAME=, e.g. web=127.0.0.1:8080)")
        }
        guard let port = Self.parsePort(portText) else {
            throw ConfigurationError("bad listen address \"\(text)\": port \"\(portText)\" is not a number from 0 to 65535")
        }
        self = .inet(host: host, port: port, transport: transport)
    }

    private static func splitHostPort(_ text: Substring, whole: String) throws(ConfigurationError) -> (String?, Substring) {
        if text.isEmpty {
            throw ConfigurationError("bad listen address \"\(whole)\": expected HOST:PORT, [IPV6]:PORT, :PORT or unix:/path")
        }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw ConfigurationError("bad listen address \"\(whole)\": missing ']' after the IPv6 address")
            }
            let host = text[text.index(after: text.startIndex) ..< close]
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":") else {
                throw ConfigurationError("bad listen address \"\(whole)\": expected :PORT after ']'")
            }
            guard !host.isEmpty else {
                throw ConfigurationError("bad listen address \"\(whole)\": empty IPv6 address between '[' and ']'")
            }
            return (String(host), after.dropFirst())
        }
        guard let colon = text.lastIndex(of: ":") else {
            // A bare port, as systemd's ListenStream= allows.
            if text.allSatisfy(\.isASCIIDigit) { return (nil, text) }
            throw ConfigurationError("bad listen address \"\(whole)\": missing :PORT (write HOST:PORT, :PORT or unix:/path)")
        }
        let host = text[..<colon]
        if host.contains(":") {
            throw ConfigurationError("bad listen address \"\(whole)\": put an IPv6 address in brackets, e.g. [::1]:8080")
        }
        if host.contains(where: { $0 == " " || $0 == "/" }) {
            throw ConfigurationError("bad listen address \"\(whole)\": \"\(host)\" is not a host name or address")
        }
        return (host.isEmpty ? nil : String(host), text[text.index(after: colon)...])
    }

    private static func parsePort(_ text: Substring) -> UInt16? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy(\.isASCIIDigit), let value = Int(text), value <= 65535 else {
            return nil
        }
        return UInt16(value)
    }
}

/// One `--listen [NAME=]ADDRESS`.
public struct ListenerSpec: Equatable, Sendable, CustomStringConvertible {
    public var name: SocketName
    public var address: ListenAddress
    /// Whether NAME= was given (an unnamed listener is called `unknown`, as systemd calls them).
    public var isNamed: Bool

    public init(name: SocketName, address: ListenAddress, isNamed: Bool = true) {
        self.name = name
        self.address = address
        self.isNamed = isNamed
    }

    /// Parses `[NAME=]ADDRESS`. A `=` counts as the name separator only when
    /// what stands before it cannot be an address (it has no `:`, `/` or `[`).
    public init(parsing text: String) throws(ConfigurationError) {
        // By Unicode scalar: `=` followed by a combining mark is one Character, and
        // `web=\u{301}…` must still split at the `=` (as the names are ASCII anyway).
        let scalars = text.unicodeScalars
        if let equals = scalars.firstIndex(of: "="),
           !scalars[..<equals].contains(where: { $0 == ":" || $0 == "/" || $0 == "[" }) {
            let nameText = String(Substring(scalars[..<equals]))
            do {
                name = try SocketName(nameText)
            } catch {
                throw ConfigurationError("bad listener \"\(text)\": \(error)")
            }
            isNamed = true
            let addressText = String(Substring(scalars[scalars.index(after: equals)...]))
            // `a=b=127.0.0.1:80`: never a host to look up in DNS.
            if addressText.unicodeScalars.first(where: { $0 == "=" || $0 == ":" || $0 == "/" || $0 == "[" }) == "=" {
                throw ConfigurationError("bad listener \"\(text)\": give one NAME= before the address, e.g. web=127.0.0.1:8080 (neither a name nor a host contains '=')")
            }
            address = try ListenAddress(parsing: addressText)
        } else {
            name = .unnamed
            isNamed = false
            address = try ListenAddress(parsing: text)
        }
    }

    public var description: String { "\(name)=\(address)" }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

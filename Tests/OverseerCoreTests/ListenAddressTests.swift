import OverseerCore
import OverseerProtocol
import Testing

@Suite struct ListenAddressTests {
    @Test(arguments: [
        ("127.0.0.1:8080", ListenAddress.inet(host: "127.0.0.1", port: 8080, transport: .stream), "127.0.0.1:8080"),
        ("localhost:80", .inet(host: "localhost", port: 80, transport: .stream), "localhost:80"),
        ("[::1]:8080", .inet(host: "::1", port: 8080, transport: .stream), "[::1]:8080"),
        ("[fe80::1%eth0]:443", .inet(host: "fe80::1%eth0", port: 443, transport: .stream), "[fe80::1%eth0]:443"),
        (":8080", .inet(host: nil, port: 8080, transport: .stream), ":8080"),
        ("8080", .inet(host: nil, port: 8080, transport: .stream), ":8080"),
        (":0", .inet(host: nil, port: 0, transport: .stream), ":0"),
        ("0.0.0.0:65535", .inet(host: "0.0.0.0", port: 65535, transport: .stream), "0.0.0.0:65535"),
        ("tcp:example.org:80", .inet(host: "example.org", port: 80, transport: .stream), "example.org:80"),
        ("tcp::80", .inet(host: nil, port: 80, transport: .stream), ":80"),
        ("tcp:80", .inet(host: nil, port: 80, transport: .stream), ":80"),
        ("udp:127.0.0.1:53", .inet(host: "127.0.0.1", port: 53, transport: .datagram), "udp:127.0.0.1:53"),
        ("udp::53", .inet(host: nil, port: 53, transport: .datagram), "udp::53"),
        ("udp:53", .inet(host: nil, port: 53, transport: .datagram), "udp::53"),
        ("udp:[::]:53", .inet(host: "::", port: 53, transport: .datagram), "udp:[::]:53"),
        ("unix:/run/app.sock", .unix(path: "/run/app.sock"), "unix:/run/app.sock"),
        ("unix:@abstract", .unix(path: "@abstract"), "unix:@abstract"),
        ("unix:relative.sock", .unix(path: "relative.sock"), "unix:relative.sock"),
        ("unix:/tmp/a=b:c", .unix(path: "/tmp/a=b:c"), "unix:/tmp/a=b:c"),
        ("unix:/" + String(repeating: "p", count: 106), .unix(path: "/" + String(repeating: "p", count: 106)),
         "unix:/" + String(repeating: "p", count: 106)),
    ])
    func parses(_ text: String, _ expected: ListenAddress, _ description: String) throws {
        let address = try ListenAddress(parsing: text)
        #expect(address == expected)
        #expect(address.description == description)
        // The description is itself a valid address that means the same.
        #expect(try ListenAddress(parsing: address.description) == address)
    }

    @Test(arguments: [
        (":99999", "bad listen address \":99999\": port \"99999\" is not a number from 0 to 65535"),
        (":65536", "port \"65536\" is not a number from 0 to 65535"),
        ("99999", "port \"99999\" is not a number from 0 to 65535"),
        (":000080", "port \"000080\" is not a number"),
        (":-1", "port \"-1\" is not a number"),
        (":+80", "port \"+80\" is not a number"),
        (":8O", "port \"8O\" is not a number"),
        ("host:", "bad listen address \"host:\": port \"\" is not a number from 0 to 65535"),
        (":", "port \"\" is not a number"),
        ("[::1]:", "port \"\" is not a number"),
        ("unix:", "bad listen address \"unix:\": unix: needs a path, e.g. unix:/run/app/app.sock"),
        ("unix:@", "unix: needs a path"),
        ("unix:/" + String(repeating: "p", count: 107), "a unix socket path can be at most 107 bytes long"),
        ("unix:/a\u{0}b", "the path contains a NUL byte"),
        ("", "bad listen address \"\": expected HOST:PORT, [IPV6]:PORT, :PORT or unix:/path"),
        ("tcp:", "bad listen address \"tcp:\": expected HOST:PORT"),
        ("udp:", "expected HOST:PORT"),
        ("::1:80", "bad listen address \"::1:80\": put an IPv6 address in brackets, e.g. [::1]:8080"),
        ("fe80::1:443", "put an IPv6 address in brackets"),
        ("[::1:80", "missing ']' after the IPv6 address"),
        ("[::1]80", "expected :PORT after ']'"),
        ("[::1]", "expected :PORT after ']'"),
        ("[]:80", "empty IPv6 address between '[' and ']'"),
        ("localhost", "bad listen address \"localhost\": missing :PORT (write HOST:PORT, :PORT or unix:/path)"),
        ("http", "missing :PORT"),
        ("a b:80", "\"a b\" is not a host name or address"),
        ("/tmp/x:80", "\"/tmp/x\" is not a host name or address"),
        ("unx:/tmp/x", "bad listen address \"unx:/tmp/x\": port \"/tmp/x\" is not a number"),
        // Not a host to look up in DNS (which failed with 71, as if the network were down).
        ("b=127.0.0.1:1", "bad listen address \"b=127.0.0.1:1\": a host name cannot contain '=' (a listener takes one NAME=, e.g. web=127.0.0.1:8080)"),
        ("[a=b]:80", "bad listen address \"[a=b]:80\": a host name cannot contain '='"),
        ("udp:x=y:53", "a host name cannot contain '='"),
    ])
    func rejects(_ text: String, _ message: String) {
        #expect {
            _ = try ListenAddress(parsing: text)
        } throws: { error in
            (error as? ConfigurationError)?.description.contains(message) == true
        }
    }
}

@Suite struct ListenerSpecTests {
    @Test(arguments: [
        ("web=:8080", "web", true, ListenAddress.inet(host: nil, port: 8080, transport: .stream)),
        ("admin=127.0.0.1:9000", "admin", true, .inet(host: "127.0.0.1", port: 9000, transport: .stream)),
        ("v6=[::1]:80", "v6", true, .inet(host: "::1", port: 80, transport: .stream)),
        ("dns=udp::53", "dns", true, .inet(host: nil, port: 53, transport: .datagram)),
        ("sock=unix:/run/a.sock", "sock", true, .unix(path: "/run/a.sock")),
        ("x=8080", "x", true, .inet(host: nil, port: 8080, transport: .stream)),
        (":8080", "unknown", false, .inet(host: nil, port: 8080, transport: .stream)),
        ("unix:/tmp/a=b", "unknown", false, .unix(path: "/tmp/a=b")),
        ("[::1]:80", "unknown", false, .inet(host: "::1", port: 80, transport: .stream)),
    ])
    func parses(_ text: String, _ name: String, _ isNamed: Bool, _ address: ListenAddress) throws {
        let spec = try ListenerSpec(parsing: text)
        #expect(spec.name.rawValue == name)
        #expect(spec.isNamed == isNamed)
        #expect(spec.address == address)
        #expect(spec.description == "\(name)=\(address)")
    }

    @Test(arguments: [
        ("=:80", "bad listener \"=:80\": bad socket name \"\": it is empty"),
        ("a b=:80", "bad listener \"a b=:80\": bad socket name \"a b\": only printable ASCII without ':' or spaces is allowed"),
        ("wéb=:80", "bad socket name \"wéb\": only printable ASCII"),
        (String(repeating: "n", count: 256) + "=:80", "it is longer than 255 characters"),
        // With a ':' before '=', the whole is taken as an address, whose host then has a ':'.
        ("a:b=:80", "bad listen address \"a:b=:80\": put an IPv6 address in brackets"),
        ("web=:99999", "bad listen address \":99999\": port \"99999\""),
        ("web=unix:", "bad listen address \"unix:\": unix: needs a path"),
        ("web=", "bad listen address \"\": expected HOST:PORT"),
        ("web=::1:80", "put an IPv6 address in brackets"),
        ("a=b=127.0.0.1:1", "bad listener \"a=b=127.0.0.1:1\": give one NAME= before the address, e.g. web=127.0.0.1:8080 (neither a name nor a host contains '=')"),
        ("web==:80", "bad listener \"web==:80\": give one NAME= before the address"),
    ])
    func rejects(_ text: String, _ message: String) {
        #expect {
            _ = try ListenerSpec(parsing: text)
        } throws: { error in
            (error as? ConfigurationError)?.description.contains(message) == true
        }
    }

    @Test func longestNameIsAccepted() throws {
        let name = String(repeating: "n", count: 255)
        let spec = try ListenerSpec(parsing: name + "=:80")
        #expect(spec.name.rawValue == name)
    }
}

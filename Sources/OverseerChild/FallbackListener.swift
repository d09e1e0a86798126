import Glibc

/// Binds the socket a program uses when it was given none.
enum FallbackListener {
    static func bind(_ address: String, backlog: Int32) throws(OverseerChildError) -> Int32 {
        if address.hasPrefix("unix:") {
            return try bindUnix(String(address.dropFirst(5)), backlog: backlog)
        }
        let text = address.hasPrefix("tcp:") ? String(address.dropFirst(4)) : address
        guard let colon = text.lastIndex(of: ":") else {
            throw OverseerChildError(.badAddress, "bad address \(address): expected HOST:PORT, [IPV6]:PORT, :PORT or unix:/path")
        }
        var host = String(text[..<colon])
        let port = String(text[text.index(after: colon)...])
        guard let number = UInt16(port) else {
            throw OverseerChildError(.badAddress, "bad address \(address): \(port) is not a port (0-65535)")
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return try bindTCP(host: host.isEmpty ? nil : host, port: number, address: address, backlog: backlog)
    }

    private static func bindTCP(host: String?, port: UInt16, address: String, backlog: Int32) throws(OverseerChildError) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        // Every interface: IPv6 first (dual-stack), IPv4 where there is no IPv6.
        if host == nil { hints.ai_family = AF_INET6 }
        var list: UnsafeMutablePointer<addrinfo>?
        var status = getaddrinfo(host, String(port), &hints, &list)
        if status != 0 && host == nil {
            hints.ai_family = AF_INET
            status = getaddrinfo(nil, String(port), &hints, &list)
        }
        guard status == 0, let first = list else {
            throw OverseerChildError(.badAddress, "cannot resolve \(address): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var result: Int32 = -1
        var failure = ""
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry, result < 0 {
            entry = current.pointee.ai_next
            let family = current.pointee.ai_family
            let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { failure = "socket: \(errnoText(errno))"; continue }
            var one: Int32 = 1
            var zero: Int32 = 0
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if family == AF_INET6 && host == nil {
                setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size))
            }
            if Glibc.bind(fd, current.pointee.ai_addr, current.pointee.ai_addrlen) != 0 {
                failure = "bind: \(errnoText(errno))"
                _ = close(fd)
                continue
            }
            if listen(fd, backlog) != 0 {
                failure = "listen: \(errnoText(errno))"
                _ = close(fd)
                continue
            }
            result = fd
        }
        guard result >= 0 else {
            throw OverseerChildError(.bindFailed, "cannot listen on \(address): \(failure)")
        }
        return result
    }

    private static func bindUnix(_ path: String, backlog: Int32) throws(OverseerChildError) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw OverseerChildError(.badAddress, "bad address unix:\(path): empty or longer than 107 bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw OverseerChildError(.bindFailed, "cannot listen on unix:\(path): socket: \(errnoText(errno))") }
        func bindOnce() -> Int32 {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
            }
        }
        var status = bindOnce()
        if status != 0 && errno == EADDRINUSE && !abstract && isStale(address, length: length) {
            unlink(path)
            status = bindOnce()
        }
        guard status == 0, listen(fd, backlog) == 0 else {
            let reason = errnoText(errno)
            _ = close(fd)
            throw OverseerChildError(.bindFailed, "cannot listen on unix:\(path): \(reason)")
        }
        return fd
    }

    /// A socket file nobody accepts on: left behind by a process that died.
    private static func isStale(_ address: sockaddr_un, length: socklen_t) -> Bool {
        var address = address
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { return false }
        defer { _ = close(probe) }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, length) }
        }
        return status != 0 && errno == ECONNREFUSED
    }
}

import Glibc

/// Printing socket addresses and asking a socket what it is.
enum SocketAddress {
    /// `127.0.0.1:8080`, `[::1]:8080`, `unix:/path`, `unix:@abstract`.
    static func describe(_ storage: UnsafePointer<sockaddr>, length: socklen_t) -> String {
        switch Int32(storage.pointee.sa_family) {
        case AF_INET:
            return storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                var copy = address.pointee.sin_addr
                var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                inet_ntop(AF_INET, &copy, &text, socklen_t(text.count))
                return "\(String(cString: text)):\(UInt16(bigEndian: address.pointee.sin_port))"
            }
        case AF_INET6:
            return storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                var copy = address.pointee.sin6_addr
                var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                inet_ntop(AF_INET6, &copy, &text, socklen_t(text.count))
                return "[\(String(cString: text))]:\(UInt16(bigEndian: address.pointee.sin6_port))"
            }
        case AF_UNIX:
            return storage.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { address in
                let pathLength = Int(length) - MemoryLayout<sa_family_t>.size
                guard pathLength > 0 else { return "unix:(unnamed)" }
                return withUnsafeBytes(of: address.pointee.sun_path) { raw in
                    let bytes = raw.prefix(pathLength)
                    if bytes.first == 0 {
                        return "unix:@" + String(decoding: bytes.dropFirst().prefix { $0 != 0 }, as: UTF8.self)
                    }
                    return "unix:" + String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                }
            }
        default:
            return "family \(storage.pointee.sa_family)"
        }
    }

    /// The local address of `fd`.
    static func local(of fd: Int32) -> String {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { return "(not a socket)" }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { describe($0, length: length) }
        }
    }

    /// `tcp`, `udp`, `unix`, `unix-dgram`, `unix-seqpacket`, or nil if `fd` is not a socket.
    static func kind(of fd: Int32) -> String? {
        var type: Int32 = 0
        var family: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else { return nil }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &length) == 0 else { return nil }
        let stream = type == Int32(SOCK_STREAM.rawValue)
        let datagram = type == Int32(SOCK_DGRAM.rawValue)
        switch family {
        case AF_INET, AF_INET6: return stream ? "tcp" : datagram ? "udp" : "inet"
        case AF_UNIX: return stream ? "unix" : datagram ? "unix-dgram" : "unix-seqpacket"
        default: return "socket"
        }
    }

    /// Fills a sockaddr_un for `path` (a leading `@` means the abstract namespace).
    static func unix(_ path: String) -> (sockaddr_un, socklen_t) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let base = MemoryLayout<sa_family_t>.size
        let length = abstract ? base + bytes.count : base + bytes.count + 1
        return (address, socklen_t(length))
    }
}

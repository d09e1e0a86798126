#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A minimal HTTP/1.0 GET over a real TCP or unix socket, for asserting who answered.
struct HTTPResponse {
    let status: Int
    let headers: [String: String]
    let body: String

    var pid: Int32? { headers["x-pid"].flatMap { Int32($0) } }
}

enum HTTPClient {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func get(port: UInt16, host: String = "127.0.0.1", path: String = "/", timeout: Double = 10) throws -> HTTPResponse {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 || (errno == EINTR && waitConnected(fd)) else { throw Failure(description: "connect to \(host):\(port): errno \(errno)") }
        return try exchange(fd, host: host, path: path, timeout: timeout)
    }

    static func get(unixPath: String, path: String = "/", timeout: Double = 10) throws -> HTTPResponse {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in unixPath.utf8.enumerated() { raw[index] = byte }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw Failure(description: "connect to \(unixPath): errno \(errno)") }
        return try exchange(fd, host: "localhost", path: path, timeout: timeout)
    }

    /// After an interrupted connect(), the connection goes on: wait until it is writable and check it.
    private static func waitConnected(_ fd: Int32) -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        var ready = poll(&poller, 1, 10_000)
        while ready < 0, errno == EINTR { ready = poll(&poller, 1, 10_000) }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        return ready == 1 && error == 0
    }

    private static func exchange(_ fd: Int32, host: String, path: String, timeout: Double) throws -> HTTPResponse {
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(host)\r\n\r\n".utf8)
        // Some suites send this process signals (StopRequestTests): an interrupted call is retried.
        var sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        while sent < 0, errno == EINTR { sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
        guard sent == request.count else {
            throw Failure(description: "send: errno \(errno)")
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 { received += buffer.prefix(count); continue }
            if count == 0 { break }
            if errno == EINTR { continue }
            throw Failure(description: "recv: errno \(errno) after \(received.count) bytes")
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else {
            throw Failure(description: "incomplete response (\(received.count) bytes): \(text.prefix(200))")
        }
        let head = text[..<split.lowerBound].split(separator: "\r\n")
        guard let statusLine = head.first, statusLine.hasPrefix("HTTP/"),
              let status = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else {
            throw Failure(description: "bad status line in \(text.prefix(200))")
        }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return HTTPResponse(status: status, headers: headers, body: String(text[split.upperBound...]))
    }
}

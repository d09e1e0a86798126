import Glibc

extension InheritedSocket {
    /// The backlog the socket listens with (the longest accept queue the kernel
    /// keeps for it), or nil when it is not a listening TCP or unix stream
    /// socket or the kernel does not say.
    ///
    /// The backlog belongs to the socket, which every generation shares: a
    /// library that calls `listen()` again (SwiftNIO does, with 128) changes it
    /// for all of them. Read it before handing the socket over and `listen()`
    /// again with it afterwards; `OverseerChildNIO` does this.
    ///
    /// TCP: `getsockopt(TCP_INFO)`, whose `tcpi_sacked` holds the backlog of a
    /// listening socket. Unix: a `sock_diag(7)` query by inode (`UDIAG_SHOW_RQLEN`).
    /// These are the numbers `ss -l` prints as Send-Q.
    public var listenBacklog: Int? {
        guard isListening, type == .stream, let family else { return nil }
        switch family {
        case AF_INET, AF_INET6: return tcpListenBacklog()
        case AF_UNIX: return unixListenBacklog()
        default: return nil
        }
    }

    /// The system's upper limit for any backlog (`net.core.somaxconn`), or nil if unreadable.
    public static var systemMaximumBacklog: Int? {
        guard let file = fopen("/proc/sys/net/core/somaxconn", "re") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 32)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        return Int(decodeCString(line).split(separator: "\n").first ?? "")
    }

    private func tcpListenBacklog() -> Int? {
        // struct tcp_info: 8 one-byte fields, then u32 rto, ato, snd_mss,
        // rcv_mss, unacked (offset 24), sacked (offset 28). For a socket in
        // TCP_LISTEN, Linux reports the accept queue's length in tcpi_unacked
        // and its limit (sk_max_ack_backlog) in tcpi_sacked.
        var info = [UInt8](repeating: 0, count: 256)
        var length = socklen_t(info.count)
        guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0, length >= 32 else { return nil }
        let tcpListenState: UInt8 = 10
        guard info[0] == tcpListenState else { return nil }
        return Int(Self.u32(info, at: 28))
    }

    private func unixListenBacklog() -> Int? {
        var status = stat()
        guard fstat(fd, &status) == 0 else { return nil }
        let inode = UInt32(truncatingIfNeeded: status.st_ino)
        let netlinkSockDiag: Int32 = 4
        let query = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), netlinkSockDiag)
        guard query >= 0 else { return nil }
        defer { closeDescriptor(query) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(query, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        // struct nlmsghdr (16 bytes) + struct unix_diag_req (24 bytes).
        var request: [UInt8] = []
        Self.append(UInt32(40), to: &request)           // nlmsg_len
        Self.append(UInt16(20), to: &request)           // nlmsg_type: SOCK_DIAG_BY_FAMILY
        Self.append(UInt16(1), to: &request)            // nlmsg_flags: NLM_F_REQUEST
        Self.append(UInt32(1), to: &request)            // nlmsg_seq
        Self.append(UInt32(0), to: &request)            // nlmsg_pid
        request += [UInt8(AF_UNIX), 0, 0, 0]            // sdiag_family, sdiag_protocol, pad
        Self.append(UInt32.max, to: &request)           // udiag_states: any
        Self.append(inode, to: &request)                // udiag_ino
        Self.append(UInt32(0x10), to: &request)         // udiag_show: UDIAG_SHOW_RQLEN
        Self.append(UInt32.max, to: &request)           // udiag_cookie: none (INET_DIAG_NOCOOKIE)
        Self.append(UInt32.max, to: &request)
        // struct sockaddr_nl: nl_family, pad, nl_pid 0 (the kernel), nl_groups 0.
        var kernel: [UInt8] = []
        Self.append(UInt16(AF_NETLINK), to: &kernel)
        kernel += [UInt8](repeating: 0, count: 10)
        let sent = kernel.withUnsafeBytes { address in
            request.withUnsafeBytes {
                sendto(query, $0.baseAddress, $0.count, 0, address.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                       socklen_t(address.count))
            }
        }
        guard sent == request.count else { return nil }

        var reply = [UInt8](repeating: 0, count: 8192)
        let count = recv(query, &reply, reply.count, 0)
        guard count >= 32 else { return nil }
        let messageType = UInt16(reply[4]) | UInt16(reply[5]) << 8
        guard messageType == 20 else { return nil }     // NLMSG_ERROR (2) when the kernel has no answer
        // struct unix_diag_msg (16 bytes) after the header, then rtattrs.
        guard Self.u32(reply, at: 20) == inode else { return nil }
        let end = min(count, Int(Self.u32(reply, at: 0)))
        var offset = 32
        while offset + 4 <= end {
            let attributeLength = Int(UInt16(reply[offset]) | UInt16(reply[offset + 1]) << 8)
            let attributeType = UInt16(reply[offset + 2]) | UInt16(reply[offset + 3]) << 8
            guard attributeLength >= 4 else { return nil }
            let unixDiagRQLen: UInt16 = 4
            if attributeType == unixDiagRQLen, attributeLength >= 12 {
                // struct unix_diag_rqlen: udiag_rqueue (queued connections), udiag_wqueue (the backlog).
                return Int(Self.u32(reply, at: offset + 8))
            }
            offset += (attributeLength + 3) & ~3
        }
        return nil
    }

    private static func u32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        // Netlink and tcp_info are in host order: little-endian on every Linux Swift targets.
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }
}

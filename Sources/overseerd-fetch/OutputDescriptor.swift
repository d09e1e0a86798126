import Glibc

/// The already-open file descriptor the daemon gave for the body.
struct OutputDescriptor {
    let fd: Int32
    /// A regular file is written with pwrite from offset 0, whatever its current offset;
    /// anything else (a pipe, in tests) with plain write.
    let isRegularFile: Bool

    /// Checks that `fd` is open for writing.
    init(fd: Int32) throws(FetchFailure) {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw .usage("--output-fd \(fd) is not an open file descriptor: " + Self.errnoText())
        }
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, flags & O_ACCMODE != O_RDONLY else {
            throw .usage("--output-fd \(fd) is not open for writing")
        }
        self.fd = fd
        isRegularFile = (info.st_mode & S_IFMT) == S_IFREG
    }

    /// Writes all of `bytes` at `offset`, retrying short writes and EINTR.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(FetchFailure) {
        guard var base = bytes.baseAddress else { return }
        var remaining = bytes.count, position = offset
        while remaining > 0 {
            let written = isRegularFile ? pwrite(fd, base, remaining, off_t(position)) : Glibc.write(fd, base, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                throw FetchFailure(.io, "overseerd-fetch: cannot write the download to fd \(fd): "
                    + Self.errnoText() + " (is the staging file system full?)")
            }
            base += written
            remaining -= written
            position += Int64(written)
        }
    }

    /// Cuts a regular file to `length`, in case it held older bytes beyond it.
    func truncate(to length: Int64) throws(FetchFailure) {
        guard isRegularFile else { return }
        while ftruncate(fd, off_t(length)) != 0 {
            if errno == EINTR { continue }
            throw FetchFailure(.io, "overseerd-fetch: cannot truncate fd \(fd) to \(length) bytes: " + Self.errnoText())
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

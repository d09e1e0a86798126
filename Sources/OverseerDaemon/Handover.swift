#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import COverseerShims
import OverseerCore
import OverseerSystem

/// The syscalls of a re-exec: the state in a memfd, fds made inheritable, execve.
enum Handover {
    static func write(_ state: HandoverState) throws(SystemError) -> Int32 {
        let fd = overseer_memfd_create("overseerd-handover")
        guard fd >= 0 else { throw .last("memfd_create") }
        let bytes = Array(state.encoded.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if count < 0 {
                if errno == EINTR { continue }
                let error = SystemError.last("write(memfd)")
                close(fd)
                throw error
            }
            written += count
        }
        lseek(fd, 0, SEEK_SET)
        return fd
    }

    /// Reads and closes the state fd an earlier image left.
    static func read(fd: Int32) throws -> HandoverState {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError.last("read(state fd \(fd))")
            }
            if count == 0 { break }
            bytes += buffer.prefix(count)
        }
        close(fd)
        return try HandoverState(parsing: String(decoding: bytes, as: UTF8.self))
    }

    static func setInheritable(_ fd: Int32, _ inheritable: Bool) {
        let flags = fcntl(fd, F_GETFD)
        guard flags >= 0 else { return }
        _ = fcntl(fd, F_SETFD, inheritable ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC)
    }

    /// execve; returns the errno when it fails. Signals stay blocked across it
    /// (the mask is kept), so none is lost while the new image starts.
    static func exec(path: String, arguments: some Collection<String>, environment: [String]) -> Int32 {
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        execve(path, argv, envp)
        return errno
    }
}

import Glibc

/// Small facts about processes and files.
public enum ProcFS {
    /// The parent of `pid`, from /proc/PID/stat (field 4, after the parenthesised name).
    public static func parentPID(of pid: Int32) -> Int32? {
        guard let fields = statFields(of: pid), fields.count > 1 else { return nil }
        return Int32(String(decoding: fields[1], as: UTF8.self))
    }

    /// The live processes in process group `group` (from /proc/PID/stat, field 5); zombies are left out.
    public static func processGroupMembers(_ group: Int32) -> [Int32] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        var members: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = Int32(name), let fields = statFields(of: pid), fields.count > 2,
                  Int32(String(decoding: fields[2], as: UTF8.self)) == group else { continue }
            // A zombie has ended: nothing is left to stop, only a status for its parent to take.
            if fields[0].first == UInt8(ascii: "Z") || fields[0].first == UInt8(ascii: "X") { continue }
            members.append(pid)
        }
        return members.sorted()
    }

    /// The fields of /proc/PID/stat after the parenthesised name: state, ppid, pgrp, …
    static func statFields(of pid: Int32) -> [ArraySlice<UInt8>]? {
        statFields(path: "/proc/\(pid)/stat")
    }

    /// The space-separated fields of a small /proc file; with `afterName`, those
    /// after the parenthesised command name (which may hold spaces) of a stat file.
    static func statFields(path: String, afterName: Bool = true) -> [ArraySlice<UInt8>]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = buffer.prefix(count)
        guard afterName else { return text.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") }) }
        guard let close = text.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        return text[(close + 1)...].split(separator: UInt8(ascii: " "))
    }

    /// `path` made absolute against the working directory, without resolving links.
    public static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        var directory = String(cString: buffer)
        if !directory.hasSuffix("/") { directory += "/" }
        let relative = path.hasPrefix("./") ? String(path.dropFirst(2)) : path
        return directory + relative
    }

    /// Device, inode, size and mtime of a file: when these are the same, so is the file.
    public static func fileIdentity(_ path: String) -> [Int] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [] }
        return [Int(info.st_dev), Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec)]
    }

    /// mtime in whole seconds, 0 when the file is missing.
    public static func modificationTime(_ path: String) -> Int {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return Int(info.st_mtim.tv_sec)
    }

    /// The path of this process's executable, as the file there is now: after
    /// a package upgrade replaced it, /proc/self/exe reads "PATH (deleted)".
    public static func ownExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments[0] }
        var path = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if path.hasSuffix(" (deleted)") { path = String(path.dropLast(" (deleted)".count)) }
        return path
    }

    /// `name` in the directory of this process's executable.
    public static func besideOwnExecutable(_ name: String) -> String {
        let path = ownExecutable()
        guard let slash = path.lastIndex(of: "/") else { return name }
        return String(path[..<slash]) + "/" + name
    }

    /// Whether `pid` is `ancestor` or one of its descendants (16 levels at most):
    /// a child's own `systemd-notify`, say.
    public static func isDescendant(_ pid: Int32, of ancestor: Int32) -> Bool {
        var current = pid
        for _ in 0 ..< 16 {
            if current == ancestor { return true }
            guard current > 1, let parent = parentPID(of: current) else { return false }
            current = parent
        }
        return false
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import OverseerSystem
import Testing

/// The control socket's directory: made private, or refused when someone else could write it.
@Suite struct RuntimeDirectoryTests {
    /// A fresh directory under /tmp holding the one `prepare` is given.
    final class Parent {
        let path: String
        init() {
            var template = Array("/tmp/overseerd-rundir-XXXXXX".utf8CString)
            path = String(cString: mkdtemp(&template)!)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        var directory: String { path + "/overseerd" }
    }

    private func mode(_ path: String) -> mode_t {
        var status = stat()
        lstat(path, &status)
        return status.st_mode
    }

    private func refusal(_ directory: String) -> String? {
        do {
            try RuntimeDirectory.prepare(directory: directory)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func missingDirectoryIsMadePrivate() throws {
        let parent = Parent()
        let saved = umask(0)
        defer { umask(saved) }
        try RuntimeDirectory.prepare(directory: parent.directory)
        #expect(mode(parent.directory) & 0o7777 == 0o700, "0700 whatever the umask")
        var status = stat()
        #expect(lstat(parent.directory, &status) == 0 && status.st_uid == geteuid())
        // Again: it is there and fine.
        try RuntimeDirectory.prepare(directory: parent.directory)
    }

    @Test func privateOrRootOwnedDirectoriesAreTaken() throws {
        let parent = Parent()
        #expect(mkdir(parent.directory, 0o755) == 0)
        #expect(chmod(parent.directory, 0o755) == 0)
        try RuntimeDirectory.prepare(directory: parent.directory)
        // Owned by root and written by root alone: any user may trust it.
        try RuntimeDirectory.prepare(directory: "/")
    }

    @Test(arguments: [0o777, 0o770, 0o702, 0o1777])
    func writableByOthersIsRefused(_ permissions: Int) throws {
        let parent = Parent()
        #expect(mkdir(parent.directory, 0o700) == 0)
        #expect(chmod(parent.directory, mode_t(permissions)) == 0)
        #expect(refusal(parent.directory) == "control directory \(parent.directory) has mode \(String(permissions, radix: 8)): other users can write it and could answer in overseerd's place — chmod 700 \(parent.directory), or give --control-socket PATH in a directory only you can write")
        #expect(mode(parent.directory) & 0o7777 == mode_t(permissions), "left as it was")
    }

    @Test func symbolicLinkIsRefusedEvenToAGoodDirectory() throws {
        let parent = Parent()
        let real = parent.path + "/real"
        #expect(mkdir(real, 0o700) == 0)
        #expect(symlink(real, parent.directory) == 0)
        #expect(refusal(parent.directory) == "control directory \(parent.directory) is a symbolic link: someone else may point it elsewhere — remove it (overseerd makes it anew), or give --control-socket PATH in a directory only you can write")
    }

    @Test func fileInTheWayIsRefused() throws {
        let parent = Parent()
        #expect(FileManager.default.createFile(atPath: parent.directory, contents: Data()))
        #expect(refusal(parent.directory)?.hasPrefix("control directory \(parent.directory) is not a directory — remove it") == true)
    }

    @Test func missingParentSaysSo() {
        let parent = Parent()
        let directory = parent.path + "/no/such"
        #expect(refusal(directory) == "cannot create control directory \(directory): no such file or directory — create it with mode 0700, or give --control-socket PATH in a directory only you can write")
    }

    /// The squatter: another user made the directory first (here as root, chown to nobody).
    @Test(.enabled(if: geteuid() == 0, "needs root to give a directory to another user (chown)"))
    func directoryOfAnotherUserIsRefused() throws {
        let parent = Parent()
        #expect(mkdir(parent.directory, 0o700) == 0)
        #expect(chown(parent.directory, 65534, 65534) == 0)
        #expect(refusal(parent.directory) == "control directory \(parent.directory) is owned by uid 65534, not by root: that user could answer in overseerd's place — remove it (overseerd makes it anew), or give --control-socket PATH in a directory only you can write")
    }

    /// The rule itself, for users the tests cannot become.
    @Test(arguments: [
        // (owner, mode, effective uid, accepted)
        (UInt32(1000), mode_t(S_IFDIR | 0o700), UInt32(1000), true),
        (0, mode_t(S_IFDIR | 0o755), 1000, true),
        (1001, mode_t(S_IFDIR | 0o700), 1000, false),
        (1000, mode_t(S_IFDIR | 0o700), 0, false),
        (1000, mode_t(S_IFDIR | 0o720), 1000, false),
        (0, mode_t(S_IFDIR | 0o1777), 1000, false),
        (1000, mode_t(S_IFLNK | 0o777), 1000, false),
    ])
    func rule(_ owner: UInt32, _ mode: mode_t, _ effectiveUID: UInt32, _ accepted: Bool) {
        let result = Result { () throws(RuntimeDirectoryError) in
            try RuntimeDirectory.check("/d", owner: owner, mode: mode, effectiveUID: effectiveUID)
        }
        #expect(((try? result.get()) != nil) == accepted)
    }
}

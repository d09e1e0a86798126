#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// The Debian package: built with debhelper by packaging/build-deb, checked by
/// lintian, unpacked into a scratch root, and its binaries run. It needs a
/// release build (about 1.5 minutes here), so it runs when
/// PACKAGING_TESTS=1, as .ci/run sets it.
@Suite struct PackagingTests {
    static var enabled: Bool { ProcessInfo.processInfo.environment["PACKAGING_TESTS"] == "1" }

    @Test(.enabled(if: enabled, "set PACKAGING_TESTS=1 to build the .deb"), .timeLimit(.minutes(20)))
    func debianPackageBuildsInstallsAndRuns() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let scratch = ScratchDirectory()
        let build = try RunningProcess([root + "/packaging/build-deb", scratch.file("out")], workingDirectory: root)
        #expect(try build.waitForExit(timeout: 1200) == .exited(0), "build-deb failed:\n\(build.stderrText.suffix(3000))")
        let deb = try #require(build.stdoutText.split(separator: "\n").last.map(String.init))
        #expect(deb.hasSuffix(".deb"))

        let info = try RunningProcess(["/usr/bin/dpkg-deb", "--field", deb, "Depends"]).waitForExitWithOutput()
        let depends = info.1
        for library in ["libc6", "libsystemd0", "libsodium23", "libcurl4"] {
            #expect(depends.contains(library), "Depends: \(depends)")
        }
        #expect(!depends.contains("swift"), "the Swift runtime is linked in statically")

        let installed = scratch.file("root")
        #expect(try RunningProcess(["/usr/bin/dpkg", "-x", deb, installed]).waitForExit() == .exited(0))
        for path in ["/usr/bin/overseerd", "/usr/libexec/overseerd/overseerd-fetch", "/usr/share/man/man8/overseerd.8.gz",
                     "/usr/share/doc/overseerd/examples/overseerd-example.service"] {
            #expect(FileManager.default.fileExists(atPath: installed + path), "\(path) is in the package")
        }
        let version = try RunningProcess([installed + "/usr/bin/overseerd", "--version"]).waitForExitWithOutput()
        #expect(version.0 == .exited(0) && version.1 == "0.1.0\n")
        // The installed daemon runs a child and passes its status on; the fetcher answers its usage.
        let wrapped = try RunningProcess([installed + "/usr/bin/overseerd", "--control-socket", "none", "--", "/bin/sh", "-c", "exit 7"])
        #expect(try wrapped.waitForExit() == .exited(7))
        let fetch = try RunningProcess([installed + "/usr/libexec/overseerd/overseerd-fetch", "--help"]).waitForExitWithOutput()
        #expect(fetch.0 == .exited(0))
        let manual = try RunningProcess(["/bin/sh", "-c", "zcat \(installed)/usr/share/man/man8/overseerd.8.gz"]).waitForExitWithOutput()
        #expect(manual.1.contains(".SH EXIT STATUS"))
        // The shipped unit, started by a real systemd from the unpacked tree.
        if SystemdInstance.unavailable == nil || SystemdInstance.isCI {
            try RealSystemdTests.startShippedUnit(fromPackageTree: installed)
        }
    }
}

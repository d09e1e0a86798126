#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// examples/go: net.FileListener and READY=1 written out, standard library only.
@Suite struct ExampleGoTests {
    static let go = Examples.which("go")

    /// Builds examples/go into `scratch` with caches there too: no module download, nothing left behind.
    static func build(into scratch: ScratchDirectory) throws -> String {
        let output = scratch.file("hello")
        let build = try RunningProcess(
            [go!, "build", "-o", output, "."],
            environment: ["GOCACHE": scratch.file("gocache"), "GOPATH": scratch.file("gopath"),
                          "GOPROXY": "off", "GOFLAGS": "", "CGO_ENABLED": "0"],
            workingDirectory: Examples.directory + "/go")
        guard try build.waitForExit(timeout: 240) == .exited(0) else {
            throw HarnessError("go build failed: \(build.stderrText)")
        }
        return output
    }

    @Test(.enabled(if: go != nil, "go (Debian package golang-go) is not installed: run scripts/setup"),
          .timeLimit(.minutes(5)))
    func restartsOnceAndAnswersTheUpgradeCheck() throws {
        let scratch = ScratchDirectory()
        let hello = try Self.build(into: scratch)
        try Examples.restartOnce([hello])
        let (exit, output) = try Examples.answerToCheck([hello])
        #expect(exit == .exited(0))
        #expect(output == "token")
    }
}

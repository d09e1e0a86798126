#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import Testing

/// examples/go: net.FileListener and READY=1 written out, standard library only.
@Suite struct ExampleGoTests {
    static let go = Examples.which("go")

    /// Builds examples/go into `scratch` with caches there too: no module download, nothing left behind.
    static func build(into scratch: ScratchDirectory) throws -> String {
        let output = scratch.file("hello")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: go!)
        process.arguments = ["build", "-o", output, "."]
        process.currentDirectoryURL = URL(fileURLWithPath: Examples.directory + "/go")
        var environment = ProcessInfo.processInfo.environment
        environment["GOCACHE"] = scratch.file("gocache")
        environment["GOPATH"] = scratch.file("gopath")
        environment["GOPROXY"] = "off"
        environment["GOFLAGS"] = ""
        environment["CGO_ENABLED"] = "0"
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw HarnessError("go build failed: \(String(decoding: message, as: UTF8.self))")
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

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// examples/shell: inetd-style, one script run per connection by
/// systemd-socket-activate, which takes the listener overseerd passes.
@Suite struct ExampleShellTests {
    static let activator = Examples.which("systemd-socket-activate")

    @Test(.enabled(if: activator != nil, "systemd-socket-activate (Debian package systemd) is not installed: run scripts/setup"))
    func restartsOnceWithAnAnswerFromEachGeneration() throws {
        // No READY=1 from systemd-socket-activate: a short delay instead.
        try Examples.restartOnce([Self.activator!, "--inetd", "--accept", "-E", "OVERSEER_GENERATION",
                                  Examples.directory + "/shell/hello.sh"], ready: "delay:300ms")
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import Testing

/// examples/python: a plain `socket` server, and gunicorn with the example config.
@Suite struct ExamplePythonTests {
    static let python = Examples.which("python3")
    static let gunicorn = Examples.which("gunicorn")

    @Test(.enabled(if: python != nil, "python3 is not on PATH: run scripts/setup"))
    func plainSocketServerRestartsOnce() throws {
        try Examples.restartOnce([Self.python!, Examples.directory + "/python/server.py"])
    }

    @Test(.enabled(if: python != nil, "python3 is not on PATH: run scripts/setup"))
    func plainSocketServerAnswersTheUpgradeCheck() throws {
        let (exit, output) = try Examples.answerToCheck([Self.python!, Examples.directory + "/python/server.py"])
        #expect(exit == .exited(0))
        #expect(output == "token")
    }

    @Test(.enabled(if: gunicorn != nil, "gunicorn (Debian package gunicorn) is not installed: run scripts/setup"))
    func gunicornWithTheExampleConfigRestartsOnce() throws {
        try Examples.restartOnce([Self.gunicorn!, "--config", Examples.directory + "/python/gunicorn.conf.py",
                                  "--chdir", Examples.directory + "/python", "app:app"])
    }
}

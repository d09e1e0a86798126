import Foundation
import Glibc
import OverseerProtocol
import Testing

/// Each way a download fails, its kind, status and exit code.
@Suite struct FailureFetchTests {
    let server: TestServer

    init() throws { server = try TestServer.shared.get() }

    @Test func a500IsAnHTTPErrorAndWritesNothing() throws {
        let run = try FetchTool.run(["\(server.base)/error500"])
        #expect(run.exitStatus == 1, "\(run.summary)")
        let report = try #require(run.report)
        #expect(report.result == .error)
        #expect(report.kind == "http")
        #expect(report.status == 500)
        #expect(report.message?.contains("\(server.base)/error500") == true)
        #expect(run.written.isEmpty)
    }

    @Test func a404IsAnHTTPError() throws {
        let run = try FetchTool.run(["\(server.base)/no/such/file"])
        #expect(run.report?.kind == "http", "\(run.summary)")
        #expect(run.report?.status == 404)
        #expect(run.written.isEmpty)
    }

    @Test func aRedirectLoopIsAnHTTPError() throws {
        let run = try FetchTool.run(["--max-redirects", "4", "\(server.base)/loop"])
        #expect(run.exitStatus == 1, "\(run.summary)")
        #expect(run.report?.kind == "http")
        #expect(run.report?.status == 302)
        #expect(run.report?.message?.contains("redirected more than 4 times") == true)
    }

    @Test func tooManyRedirectsIsAnHTTPError() throws {
        let run = try FetchTool.run(["--max-redirects", "2", "\(server.base)/redirect/3"])
        #expect(run.report?.kind == "http", "\(run.summary)")
    }

    @Test func aTruncatedBodyIsAnError() throws {
        let run = try FetchTool.run(["\(server.base)/truncated"])
        #expect(run.exitStatus == 1, "\(run.summary)")
        #expect(run.report?.kind == "network")
        #expect(run.report?.message?.contains("cut short") == true)
    }

    @Test func aStalledServerTimesOut() throws {
        let started = ContinuousClock.now
        let run = try FetchTool.run(["--low-speed-time", "1", "\(server.base)/stall"])
        #expect(run.exitStatus == 1, "\(run.summary)")
        #expect(run.report?.kind == "timeout")
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func maxTimeBoundsTheWholeTransfer() throws {
        let run = try FetchTool.run(["--max-time", "0.5", "\(server.base)/stall"])
        #expect(run.report?.kind == "timeout", "\(run.summary)")
    }

    @Test func anEndlessBodyStopsAtMaxSize() throws {
        let run = try FetchTool.run(["--max-size", "1000000", "\(server.base)/endless"])
        #expect(run.exitStatus == 1, "\(run.summary)")
        #expect(run.report?.kind == "size")
        #expect(run.written.count <= 1_000_000)
    }

    @Test func anAnnouncedOversizeBodyWritesNothing() throws {
        let run = try FetchTool.run(["--max-size", "1000", "\(server.base)/bin"])
        #expect(run.report?.kind == "size", "\(run.summary)")
        #expect(run.written.isEmpty)
    }

    @Test func aRefusedConnectionIsANetworkError() throws {
        // Port 1 on loopback: nothing listens there.
        let run = try FetchTool.run(["http://127.0.0.1:1/bin"])
        #expect(run.exitStatus == 1, "\(run.summary)")
        #expect(run.report?.kind == "network")
        #expect(run.report?.status == nil)
        #expect(run.report?.message?.contains("http://127.0.0.1:1/bin") == true)
    }

    @Test func anUntrustedCertificateIsATLSError() throws {
        guard let tlsPort = server.tlsPort else {
            print("anUntrustedCertificateIsATLSError: openssl(1) is missing, so the test server has no TLS port")
            return
        }
        let run = try FetchTool.run(["https://127.0.0.1:\(tlsPort)/bin"])
        #expect(run.exitStatus == 1, "\(run.summary)")
        #expect(run.report?.kind == "tls")
        #expect(run.report?.message?.contains("https://127.0.0.1:\(tlsPort)/bin") == true)
        #expect(run.written.isEmpty)
    }

    @Test func aMissingSidecarIsASidecarError() throws {
        let run = try FetchTool.run(["--sidecar", ".sha256", "\(server.base)/nosidecar"])
        #expect(run.exitStatus == 1, "\(run.summary)")
        #expect(run.report?.kind == "sidecar")
        #expect(run.report?.status == 404)
        #expect(run.report?.message?.contains("\(server.base)/nosidecar.sha256") == true)
    }

    @Test func aFailingSidecarServerKeepsItsKind() throws {
        let run = try FetchTool.run(["--sidecar", ".sha256", "\(server.base)/gone/bin"])
        #expect(run.report?.kind == "http", "\(run.summary)")
        #expect(run.report?.status == 500)
    }

    @Test func anOversizeSidecarIsASidecarError() throws {
        let run = try FetchTool.run(["--sidecar", ".sha256", "\(server.base)/huge/bin"])
        #expect(run.report?.kind == "sidecar", "\(run.summary)")
    }

    @Test func sigtermEndsItAtOnce() throws {
        // A server of its own, which says when the request has arrived.
        let own = try TestServer()
        defer { own.stop() }
        let directory = try TemporaryDirectory()
        let fd = open(directory.path + "/staged", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        defer { close(fd) }
        let child = try FetchTool.start(["\(own.base)/stall?announce=1"], output: fd)
        #expect(own.nextLine(timeout: 20) == "stalled")
        kill(child.pid, SIGTERM)
        let outcome = try child.waitForExit(timeout: 10)
        #expect(outcome == .killed(signal: SIGTERM), "exit \(outcome) \(child.stdoutText)")
    }
}

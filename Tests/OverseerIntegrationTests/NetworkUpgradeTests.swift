#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

extension UpgradeTests.Deployment {
    /// overseerd serving the deployed program with `fetchOptions` (--fetch …),
    /// --ready notify, one listener, its log in JSON; the test child serves at
    /// once and no proxy the test environment may set is used.
    func overseerdFetching(_ fetchOptions: [String], environment: [String: String] = [:]) throws -> RunningProcess {
        try RunningProcess.overseerd(
            ["--ready", "notify", "--log-format", "json"] + fetchOptions + ["-l", "127.0.0.1:0", "--", program],
            environment: ["OTC_SERVE": "1", "OTC_READY_AFTER_MS": "0", "http_proxy": "", "HTTP_PROXY": "", "all_proxy": ""]
                .merging(environment) { $1 })
    }
}

/// Upgrades fetched over HTTP by overseerd-fetch from a real local server.
@Suite struct NetworkUpgradeTests {
    /// `python3 -m http.server` on 127.0.0.1 serving a directory (it answers
    /// If-Modified-Since with 304), with its request log kept.
    final class FileServer {
        let process: RunningProcess
        let port: UInt16

        /// Serves `directory`, made first if it is not there.
        init(directory: String) throws {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            process = try RunningProcess(["/usr/bin/env", "python3", "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"],
                                         workingDirectory: directory)
            let line = try process.waitForLine(containing: "Serving HTTP on", in: .stdout)
            guard let port = line.split(separator: " ").firstIndex(of: "port").flatMap({ index in
                UInt16(line.split(separator: " ")[index + 1])
            }) else { throw HarnessError("no port in \(line)") }
            self.port = port
        }

        deinit {
            process.signal(SIGKILL)
            _ = try? process.waitForExit()
        }
    }

    @Test func httpUpgradeWithSidecarChecksumThenNotModified() throws {
        let deployment = try UpgradeTests.Deployment()
        let site = deployment.scratch.file("site")
        let server = try FileServer(directory: site)
        let new = deployment.variant("http")
        let hash = try UpgradeTests.sha256(new)
        try new.write(to: URL(fileURLWithPath: site + "/app"))
        try Data("\(hash)  app\n".utf8).write(to: URL(fileURLWithPath: site + "/app.sha256"))
        // The helper runs as nobody, who must be able to reach it: a build in a clone
        // under /root (mode 0700) is out of its reach, so it runs from a copy here.
        chmod(deployment.scratch.path, 0o711)
        let helper = deployment.scratch.file("overseerd-fetch")
        try FileManager.default.copyItem(atPath: Binaries.directory + "/overseerd-fetch", toPath: helper)
        let run = try deployment.overseerdFetching(
            ["--fetch", "http://127.0.0.1:\(server.port)/app", "--checksum", "sidecar",
             "--fetch-interval", "300ms", "--fetch-user", "nobody", "--fetch-helper", helper])
        try run.waitForEvent(.upgradeSucceeded, binary: hash)
        #expect(deployment.installed() == new)
        // The next polls cost a 304 and change nothing.
        try server.process.waitForLine(containing: "\"GET /app HTTP/1.1\" 304")
        #expect(!run.hasLogged(.generationStarted, generation: 3) && run.events(.upgradeFetched).count == 1)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// A body over --max-binary-size used to be downloaded again in full at
    /// every poll. Its validators are now kept like a rejected hash: the next
    /// polls are conditional and cost a 304 until the file changes.
    @Test func oversizedBodyIsNotDownloadedAgain() throws {
        let deployment = try UpgradeTests.Deployment()
        let site = deployment.scratch.file("site")
        let server = try FileServer(directory: site)
        try Data(count: 300_000).write(to: URL(fileURLWithPath: site + "/app"))
        let run = try deployment.overseerdFetching(
            ["--fetch", "http://127.0.0.1:\(server.port)/app", "--fetch-interval", "300ms", "--max-binary-size", "100000"])
        // The line says what the operator needs to know: it will not be downloaded again.
        let failed = try run.waitForEvent(.upgradePollFailed)
        #expect(failed.message.contains("not downloaded again until it changes"), "\(failed)")
        try server.process.waitForLine(containing: "\"GET /app HTTP/1.1\" 304")
        #expect(server.process.lines(containing: "\"GET /app HTTP/1.1\" 200").count == 1)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    @Test func badDownloadsAreRejectedAndBackedOff() throws {
        let deployment = try UpgradeTests.Deployment()
        let site = deployment.scratch.file("site")
        let server = try FileServer(directory: site)
        // A checksum file that does not match the binary: rejected, never installed.
        try deployment.variant("tampered").write(to: URL(fileURLWithPath: site + "/app"))
        try Data("\(String(repeating: "1", count: 64))  app\n".utf8).write(to: URL(fileURLWithPath: site + "/app.sha256"))
        let run = try deployment.overseerdFetching(
            ["--fetch", "http://127.0.0.1:\(server.port)/missing", "--fetch-interval", "300ms"])
        // A 404: the poll fails, is logged once per try, and backs off.
        let first = try run.waitForEvent(.upgradePollFailed).message
        #expect(first.contains("404"), "\(first)")
        // The delay is only in the text: the figure the line gives the operator is what is checked.
        let delay = first.components(separatedBy: "next try in ").last.flatMap { try? Duration(parsing: $0) }
        // The backoff starts at 2s but never exceeds the interval (300ms here), ±10% jitter.
        #expect(delay.map { $0 >= .milliseconds(269) && $0 <= .milliseconds(331) } == true,
                "the first retry comes after the interval ± 10%: \(first)")
        #expect(deployment.installed() == deployment.original)
        #expect(try FileManager.default.contentsOfDirectory(atPath: deployment.scratch.path).filter { $0.contains("staging") }.isEmpty)
        run.signal(SIGTERM)
        _ = try run.waitForExit()

        let checked = try deployment.overseerdFetching(
            ["--fetch", "http://127.0.0.1:\(server.port)/app", "--checksum", "sidecar"])
        let rejected = try checked.waitForEvent(.upgradeRejected)
        #expect(rejected.message.contains("checksum failed"), "\(rejected)")
        #expect(deployment.installed() == deployment.original)
        checked.signal(SIGTERM)
        _ = try checked.waitForExit()
    }

    @Test func fetchHelperKilledMidDownloadIsAFailedPollOnly() throws {
        let deployment = try UpgradeTests.Deployment()
        // A server that sends headers and then nothing: overseerd-fetch hangs in the transfer.
        let script = """
            import socket, sys, time
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
            print("port", s.getsockname()[1], flush=True)
            while True:
                c, _ = s.accept()
                c.recv(65536)
                c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 1000000\\r\\n\\r\\npartial")
                time.sleep(3600)
            """
        let server = try RunningProcess(["/usr/bin/env", "python3", "-u", "-c", script])
        defer { server.signal(SIGKILL); _ = try? server.waitForExit() }
        let port = try server.waitForLine(containing: "port ", in: .stdout).dropFirst(5).trimmingCharacters(in: .whitespaces)
        let run = try deployment.overseerdFetching(
            ["--fetch", "http://127.0.0.1:\(port)/app", "--fetch-interval", "10s"])
        try run.waitForEvent(.generationReady, generation: 1)
        // Find overseerd-fetch among overseerd's children, with its partial staging file.
        var helper: Int32?
        let deadline = Date().addingTimeInterval(10)
        while helper == nil, Date() < deadline {
            helper = Processes.children(of: run.pid).first { pid in
                ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").contains("overseerd-fetch")
            }
            if helper == nil { usleep(10_000) }
        }
        let fetcher = try #require(helper, "overseerd-fetch is running")
        kill(fetcher, SIGKILL)
        let failed = try run.waitForEvent(.upgradePollFailed)
        #expect(failed.message.contains("overseerd-fetch ended with signal SIGKILL"), "\(failed)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: deployment.scratch.path).filter { $0.contains("staging") }.isEmpty,
                "the partial staging file is removed")
        #expect(deployment.installed() == deployment.original)
        #expect(run.exit == nil, "a dead fetcher is a failed poll, never a failed supervisor")
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

extension NetworkUpgradeTests {
    /// A fetcher that hangs is killed at --fetch-timeout; the poll fails, nothing is left
    /// behind, and the next poll works.
    @Test func hangingFetcherIsKilledAndTheNextPollWorks() throws {
        let deployment = try UpgradeTests.Deployment()
        let site = deployment.scratch.file("site")
        let server = try FileServer(directory: site)
        let new = deployment.variant("after-hang")
        try new.write(to: URL(fileURLWithPath: site + "/app"))
        // A fetcher that hangs once (a marker file says so), then runs the real one.
        let marker = deployment.scratch.file("hang-once")
        FileManager.default.createFile(atPath: marker, contents: Data())
        let wrapper = deployment.scratch.file("fetch-wrapper")
        let real = URL(fileURLWithPath: Binaries.overseerd).deletingLastPathComponent().path + "/overseerd-fetch"
        try Data("#!/bin/sh\nif [ -e \(marker) ]; then rm \(marker); exec sleep 300; fi\nexec \(real) \"$@\"\n".utf8)
            .write(to: URL(fileURLWithPath: wrapper))
        chmod(wrapper, 0o755)
        let run = try deployment.overseerdFetching(
            ["--fetch", "http://127.0.0.1:\(server.port)/app", "--fetch-helper", wrapper,
             "--fetch-timeout", "1s", "--fetch-interval", "500ms"])
        try run.waitForEvent(.helperTimeout)
        let failed = try run.waitForEvent(.upgradePollFailed)
        #expect(failed.message.contains("overseerd-fetch ended with signal SIGKILL"), "\(failed)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: deployment.scratch.path).filter { $0.contains("staging") }.isEmpty)
        try run.waitForEvent(.upgradeSucceeded, binary: try UpgradeTests.sha256(new))
        #expect(deployment.installed() == new)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }

    /// gzip on the wire (a .gz URL) is inflated on the way in; a truncated body is a failed poll.
    @Test func gzipUpgradesAndATruncatedBodyInstallsNothing() throws {
        let deployment = try UpgradeTests.Deployment()
        let site = deployment.scratch.file("site")
        let server = try FileServer(directory: site)
        let new = deployment.variant("gzipped")
        try new.write(to: URL(fileURLWithPath: site + "/app"))
        #expect(try RunningProcess(["/bin/gzip", "-k", site + "/app"]).waitForExit() == .exited(0))
        let run = try deployment.overseerdFetching(
            ["--fetch", "http://127.0.0.1:\(server.port)/app.gz"])
        try run.waitForEvent(.upgradeSucceeded, binary: try UpgradeTests.sha256(new))
        #expect(deployment.installed() == new)
        run.signal(SIGTERM)
        _ = try run.waitForExit()

        // A server that promises more than it sends.
        let script = """
            import socket
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
            print("port", s.getsockname()[1], flush=True)
            while True:
                c, _ = s.accept()
                c.recv(65536)
                c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 100000\\r\\n\\r\\n" + b"\\x7fELF" * 100)
                c.close()
            """
        let truncating = try RunningProcess(["/usr/bin/env", "python3", "-u", "-c", script])
        defer { truncating.signal(SIGKILL); _ = try? truncating.waitForExit() }
        let port = try truncating.waitForLine(containing: "port ", in: .stdout).dropFirst(5).trimmingCharacters(in: .whitespaces)
        let second = try deployment.overseerdFetching(
            ["--fetch", "http://127.0.0.1:\(port)/app"])
        try second.waitForEvent(.upgradePollFailed)
        #expect(deployment.installed() == new, "the truncated download replaced nothing")
        #expect(try FileManager.default.contentsOfDirectory(atPath: deployment.scratch.path).filter { $0.contains("staging") }.isEmpty)
        second.signal(SIGTERM)
        _ = try second.waitForExit()
    }

    /// github:OWNER/REPO against a local server that answers like the releases API.
    @Test func githubReleaseUpgrade() throws {
        let deployment = try UpgradeTests.Deployment()
        let site = deployment.scratch.file("site")
        try FileManager.default.createDirectory(atPath: site + "/repos/acme/app/releases", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: site + "/download", withIntermediateDirectories: true)
        let server = try FileServer(directory: site)
        let new = deployment.variant("from-github")
        try new.write(to: URL(fileURLWithPath: site + "/download/app-linux-x86_64"))
        try Data("darwin".utf8).write(to: URL(fileURLWithPath: site + "/download/app-darwin-arm64"))
        let base = "http://127.0.0.1:\(server.port)"
        let release = """
            {"tag_name": "v2.0.0", "assets": [
              {"name": "app-darwin-arm64", "browser_download_url": "\(base)/download/app-darwin-arm64"},
              {"name": "app-linux-x86_64", "browser_download_url": "\(base)/download/app-linux-x86_64"}]}
            """
        try Data(release.utf8).write(to: URL(fileURLWithPath: site + "/repos/acme/app/releases/latest"))
        let run = try deployment.overseerdFetching(
            ["--fetch", "github:acme/app", "--github-api-url", base, "--asset-pattern", "*linux-x86_64*"])
        try run.waitForEvent(.upgradeSucceeded, binary: try UpgradeTests.sha256(new))
        #expect(deployment.installed() == new)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

extension NetworkUpgradeTests {
    /// s3://BUCKET/KEY against moto's S3 emulator (PyPI moto, in server mode).
    @Test func s3Upgrade() throws {
        let deployment = try UpgradeTests.Deployment()
        let new = deployment.variant("from-s3")
        let binary = deployment.scratch.file("upload")
        try new.write(to: URL(fileURLWithPath: binary))
        let moto = try MotoS3(bucket: "releases", uploads: [("app/server", binary)])
        let run = try deployment.overseerdFetching(
            ["--fetch", "s3://releases/app/server", "--s3-endpoint", moto.endpoint], environment: MotoS3.credentials)
        try run.waitForEvent(.upgradeSucceeded, binary: try UpgradeTests.sha256(new))
        #expect(deployment.installed() == new)
        run.signal(SIGTERM)
        _ = try run.waitForExit()
    }
}

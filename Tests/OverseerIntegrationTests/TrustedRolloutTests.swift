import Glibc
import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// Trusted rollouts end to end (issue 24, docs/SECURITY.md): real minisign
/// keys, a real overseerd and overseerd-fetch, the manifest and binaries on a
/// real HTTP server on 127.0.0.1 or on moto's S3. One scenario, each step
/// waited for by its event, over both transports: 2-of-3 signatures, a replay
/// after a restart, an expired manifest in the metrics, another product's
/// manifest, a binary one byte longer than `size`, a key rotation refused
/// and accepted, the retired key refused afterwards (also after a restart),
/// and `forget-keys`.
@Suite(.serialized) struct TrustedRolloutTests {
    /// Where releases are published: a directory served over HTTP, or a bucket.
    final class Site {
        let http: StreamingFileServer?
        let moto: MotoS3?
        let directory: String
        private var step = 0

        init(s3: Bool, scratch: ScratchDirectory) throws {
            directory = scratch.file("site")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            if s3 {
                moto = try MotoS3(bucket: "releases", uploads: [])
                http = nil
            } else {
                http = try StreamingFileServer(directory: directory)
                moto = nil
            }
        }

        var manifestURL: String { moto == nil ? "http://127.0.0.1:\(http!.port)/app/manifest.json" : "s3://releases/app/manifest.json" }
        var options: [String] { moto.map { ["--s3-endpoint", $0.endpoint] } ?? [] }
        var environment: [String: String] { moto == nil ? [:] : MotoS3.credentials }

        /// Publishes `data` as `app/NAME`.
        func put(_ name: String, _ data: Data) throws {
            let path = "\(directory)/app/\(name)"
            try FileManager.default.createDirectory(atPath: directory + "/app", withIntermediateDirectories: true)
            try data.write(to: URL(fileURLWithPath: path))
            // http.server answers If-Modified-Since by whole seconds: each file is newer than the last.
            step += 1
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(Double(step) * 10)], ofItemAtPath: path)
            if let moto { try moto.upload("app/\(name)", path: path) }
        }
    }

    /// minisign key pairs made by the real minisign.
    final class Keys {
        let directory: String
        let count: Int
        init(_ count: Int, in scratch: ScratchDirectory) throws {
            try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/minisign"), "install the Debian package minisign")
            directory = scratch.file("keys")
            self.count = count
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for index in 0 ..< count {
                let status = try RunningProcess(["/usr/bin/minisign", "-G", "-W", "-p", pub(index), "-s", "\(directory)/\(index).sec"]).waitForExit()
                try #require(status == .exited(0))
            }
        }

        func pub(_ index: Int) -> String { "\(directory)/\(index).pub" }
        /// The base64 line of key `index`, as a manifest's "keys" names it.
        func line(_ index: Int) throws -> String {
            try String(contentsOfFile: pub(index), encoding: .utf8).split(separator: "\n").last.map(String.init) ?? ""
        }

        /// One `.minisig` holding a signature of `data` by each of `signers`, one after another.
        /// `timestamp` (Unix time) goes into the trusted comment, as minisign's own default does with the time of signing.
        func sign(_ data: Data, by signers: [Int], timestamp: Int? = nil) throws -> Data {
            var all = Data()
            for index in signers {
                let file = "\(directory)/message-\(index)"
                try data.write(to: URL(fileURLWithPath: file))
                let comment = timestamp.map { ["-t", "timestamp:\($0)"] } ?? []
                let status = try RunningProcess(["/usr/bin/minisign", "-S", "-s", "\(directory)/\(index).sec", "-m", file] + comment).waitForExit()
                try #require(status == .exited(0))
                all += try Data(contentsOf: URL(fileURLWithPath: file + ".minisig"))
            }
            return all
        }
    }

    /// One overseerd following the site's manifest.
    final class Host {
        let deployment: UpgradeTests.Deployment
        let site: Site
        let keys: Keys
        let socket: String
        var run: RunningProcess?
        let arch = shellOutput("uname -m").trimmingCharacters(in: .whitespacesAndNewlines) == "aarch64" ? "arm64" : "amd64"

        init(s3: Bool) throws {
            deployment = try UpgradeTests.Deployment()
            site = try Site(s3: s3, scratch: deployment.scratch)
            keys = try Keys(4, in: deployment.scratch)
            socket = deployment.scratch.file("control.sock")
        }

        /// Starts overseerd trusting keys 0, 1 and 2, two of them required; `notify`: a fake systemd's socket.
        func start(notify: String? = nil) throws -> RunningProcess {
            let run = try deployment.overseerdFetching(
                ["--manifest", site.manifestURL, "--fetch-interval", "300ms", "--host-id", "host-a", "--probation", "0",
                 "--state-directory", deployment.scratch.file("state"), "--control-socket", socket,
                 "--minisign-key", keys.pub(0), "--minisign-key", keys.pub(1), "--minisign-key", keys.pub(2),
                 "--signatures-required", "2", "--release-name", "app"] + site.options,
                environment: site.environment.merging(notify.map { ["NOTIFY_SOCKET": $0] } ?? [:]) { $1 })
            try run.waitForEvent(.generationReady, generation: 1, timeout: 30)
            self.run = run
            return run
        }

        func stop() throws {
            run?.signal(SIGTERM)
            _ = try run?.waitForExit()
            run = nil
        }

        /// Publishes a binary for `version` (`extra` bytes past what `size` says) and returns it and its manifest text.
        @discardableResult
        func publish(_ version: String, sequence: Int, signers: [Int], name: String = "app", expires: String = "2099-01-01T00:00:00Z",
                     extraBytes: Int = 0, keys rotation: [Int]? = nil, required: Int = 1,
                     urlPrefix: String = "") throws -> (binary: Data, manifest: Data, signature: Data) {
            let binary = deployment.variant("trusted-\(version)")
            try site.put("app-\(version)-linux-\(arch)", binary + Data(repeating: 0x23, count: extraBytes))
            var fields = [#""name": "\#(name)""#, #""sequence": \#(sequence)"#, #""expires": "\#(expires)""#, #""version": "\#(version)""#,
                          #""url": "\#(urlPrefix)app-\#(version)-{os}-{arch}""#, #""sha256": "\#(try UpgradeTests.sha256(binary))""#, #""size": \#(binary.count)"#]
            if let rotation {
                fields.append(#""keys": [\#(try rotation.map { "\"\(try keys.line($0))\"" }.joined(separator: ", "))]"#)
                fields.append(#""signatures_required": \#(required)"#)
            }
            let manifest = Data("{\(fields.joined(separator: ", "))}".utf8)
            let signature = try keys.sign(manifest, by: signers)
            try republish(manifest, signature)
            return (binary, manifest, signature)
        }

        /// Puts a manifest and its signature back as they were (what a replaying attacker serves).
        func republish(_ manifest: Data, _ signature: Data) throws {
            try site.put("manifest.json.minisig", signature)
            try site.put("manifest.json", manifest)
        }

        func metrics() throws -> String {
            let (exit, output, _) = try HostileInputTests.control(socket, ["metrics"])
            #expect(exit == .exited(0))
            return output
        }
    }

    @Test(arguments: [false, true])
    func aNetworkAttackerCannotSteerTheRollout(s3: Bool) throws {
        let host = try Host(s3: s3)
        let deployment = host.deployment
        let timeout = s3 ? 30.0 : 20.0
        var run = try host.start()

        // 2 of 3: one signature is refused, two are taken.
        var mark = run.logMark
        let v2 = try host.publish("2.0.0", sequence: 1, signers: [0])
        _ = try Self.wait(run, .manifestRefused, after: mark, containing: "it carries valid signatures by 1 of the 3 trusted key(s), 2 required", timeout: timeout)
        #expect(deployment.installed() == deployment.original)
        let v2Hash = try UpgradeTests.sha256(v2.binary)
        try host.republish(v2.manifest, try host.keys.sign(v2.manifest, by: [0, 2]))
        try run.waitForEvent(.upgradeSucceeded, binary: v2Hash, timeout: timeout)
        let v2Signed = (v2.manifest, try host.keys.sign(v2.manifest, by: [0, 2]))
        let v3 = try host.publish("3.0.0", sequence: 2, signers: [1, 2])
        let v3Hash = try UpgradeTests.sha256(v3.binary)
        try run.waitForEvent(.upgradeSucceeded, binary: v3Hash, timeout: timeout)

        // A replayed older manifest after an overseerd restart: refused, nothing changes.
        try host.stop()
        try host.republish(v2Signed.0, v2Signed.1)
        // This time a "systemd" hears STATUS=.
        var receiver: DatagramReceiver? = try DatagramReceiver(deployment.scratch.file("notify"))
        run = try host.start(notify: deployment.scratch.file("notify"))
        _ = try Self.wait(run, .manifestReplayed, containing: "its sequence 1 is below 2, the highest taken: an old manifest replayed", timeout: timeout)
        #expect(deployment.installed() == v3.binary)
        #expect(!run.hasLogged(.generationStarted, generation: 2) && !run.hasLogged(.rolloutDecision))

        // Expired: installs nothing, and shows in the metrics (and status).
        mark = run.logMark
        let v4 = try host.publish("4.0.0", sequence: 3, signers: [0, 1], expires: "2020-01-01T00:00:00Z")
        _ = try Self.wait(run, .manifestExpired, after: mark, containing: "expired at 2020-01-01T00:00:00Z", timeout: timeout)
        #expect(try host.metrics().contains("overseerd_manifest_expires_timestamp_seconds 1577836800"))
        let (_, status, _) = try HostileInputTests.control(host.socket, ["status", "--json"])
        #expect(status.contains(#""manifest_expired":true"#), "\(status)")
        let said = try receiver?.collect(until: { $0.contains("manifest expired at 2020-01-01T00:00:00Z") })
        #expect(said?.last?.hasPrefix("STATUS=") == true, "\(String(describing: said))")
        // Nobody reads it from here on: gone, so that sends to it fail at once instead of filling its queue.
        receiver = nil
        #expect(!run.hasLogged(.upgradeSucceeded, binary: try UpgradeTests.sha256(v4.binary)))

        // Another product's manifest, signed by the same keys: refused.
        mark = run.logMark
        try host.publish("4.0.0", sequence: 4, signers: [0, 1], name: "billing")
        _ = try Self.wait(run, .manifestRefused, after: mark, containing: #"it is for "billing", not "app" (--release-name)"#, timeout: timeout)

        // A binary one byte longer than the manifest's size: refused at the announced length, not read.
        mark = run.logMark
        try host.publish("5.0.0", sequence: 5, signers: [0, 1], extraBytes: 1)
        _ = try Self.wait(run, .upgradePollFailed, after: mark, containing: "the binary is longer than the manifest's \"size\"", timeout: timeout)
        #expect(deployment.installed() == v3.binary)

        // A rotation to key 3 signed by the old keys only: refused.
        mark = run.logMark
        try host.publish("3.0.0", sequence: 6, signers: [0, 1], keys: [3])
        _ = try Self.wait(run, .manifestRefused, after: mark, containing: "it rotates the keys but is signed by 0 of its 1 new key(s), 1 required", timeout: timeout)
        // Signed by the old threshold and the new key: taken.
        mark = run.logMark
        try host.publish("3.0.0", sequence: 7, signers: [0, 1, 3], keys: [3])
        _ = try Self.wait(run, .manifestKeysChanged, after: mark, containing: "rotated the keys: from now on manifests must be signed by 1 of 1 key(s)", timeout: timeout)
        // The retired keys, even two of them and with a higher sequence: refused, after a
        // re-exec of overseerd (the state is on disk before it goes ahead), and after a restart.
        try Self.reexec(run, socket: host.socket)
        mark = run.logMark
        let v6 = try host.publish("6.0.0", sequence: 8, signers: [0, 1, 2])
        let retired = "it carries valid signatures by 0 of the 1 trusted key(s), 1 required"
        _ = try Self.wait(run, .manifestRefused, after: mark, containing: retired, timeout: timeout)
        // The same manifest, still served, after a restart (a refusal is said once per overseerd, so
        // the one at its first poll is the one to wait for: the new process logs from the start).
        try host.stop()
        run = try host.start()
        _ = try Self.wait(run, .manifestRefused, containing: retired, timeout: timeout)
        #expect(!run.hasLogged(.upgradeSucceeded, binary: try UpgradeTests.sha256(v6.binary)))
        #expect(deployment.installed() == v3.binary)
        // The new key alone is enough now.
        let v7 = try host.publish("7.0.0", sequence: 10, signers: [3])
        try run.waitForEvent(.upgradeSucceeded, binary: try UpgradeTests.sha256(v7.binary), timeout: timeout)
        // forget-keys: back to the command line's 2 of 3.
        let (forgot, answer, _) = try HostileInputTests.control(host.socket, ["forget-keys"])
        #expect(forgot == .exited(0), "\(answer)")
        #expect(answer.contains("manifests must be signed by the command line's keys again (2 of 3 key(s))"), "\(answer)")
        mark = run.logMark
        try host.publish("8.0.0", sequence: 11, signers: [3])
        _ = try Self.wait(run, .manifestRefused, after: mark, containing: "valid signatures by 0 of the 3 trusted key(s), 2 required", timeout: timeout)
        #expect(deployment.installed() == v7.binary)
        try host.stop()
    }
}

extension TrustedRolloutTests {
    /// A binary served without a length and followed by bytes without end: overseerd-fetch stops one
    /// byte past the manifest's `size` and the server sees the connection close, having sent a few
    /// buffers' worth, not the endless rest.
    @Test func anEndlessBinaryIsCutOnePastItsSize() throws {
        let host = try Host(s3: false)
        let run = try host.start()
        let mark = run.logMark
        let published = try host.publish("2.0.0", sequence: 1, signers: [0, 1], urlPrefix: "../stream/")
        _ = try Self.wait(run, .upgradePollFailed, after: mark, containing: "the binary is longer than the manifest's \"size\" \(published.binary.count)",
                          timeout: 20)
        let sent = try host.site.http!.process.waitForLine(containing: "SENT ", in: .stdout)
        let bytes = try #require(Int(sent.split(separator: " ").last ?? ""))
        print("endless body: the server sent \(bytes) bytes for a binary of \(published.binary.count)")
        #expect(bytes > published.binary.count && bytes < published.binary.count + (16 << 20), "\(sent)")
        #expect(host.deployment.installed() == host.deployment.original)
        try host.stop()
    }

    /// python's http.server on 127.0.0.1 (304s from If-Modified-Since included), plus
    /// `/stream/NAME`: `app/NAME` with no Content-Length, then `#` without end; when the
    /// client goes it prints `SENT <bytes>`.
    final class StreamingFileServer {
        let process: RunningProcess
        let port: UInt16

        init(directory: String) throws {
            let script = """
                import http.server, os, sys
                class Handler(http.server.SimpleHTTPRequestHandler):
                    def do_GET(self):
                        if not self.path.startswith("/stream/"):
                            return super().do_GET()
                        self.send_response(200)
                        self.send_header("Connection", "close")
                        self.end_headers()
                        sent = 0
                        try:
                            with open(os.path.join("app", os.path.basename(self.path)), "rb") as f:
                                data = f.read()
                            self.wfile.write(data)
                            sent += len(data)
                            chunk = b"#" * 65536
                            while True:
                                self.wfile.write(chunk)
                                sent += len(chunk)
                        except (BrokenPipeError, ConnectionResetError):
                            pass
                        print("SENT %d" % sent, flush=True)
                        self.close_connection = True
                server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
                print("PORT %d" % server.server_address[1], flush=True)
                server.serve_forever()
                """
            process = try RunningProcess(["/usr/bin/env", "python3", "-u", "-c", script], workingDirectory: directory)
            let line = try process.waitForLine(containing: "PORT ", in: .stdout)
            port = try #require(UInt16(line.split(separator: " ").last ?? ""))
        }

        deinit {
            process.signal(SIGKILL)
            _ = try? process.waitForExit()
        }
    }

    /// `overseerd reexec`, asked again while a poll is under way ("busy: try again when it has settled").
    static func reexec(_ run: RunningProcess, socket: String) throws {
        let mark = run.logMark
        for _ in 0 ..< 50 {
            let (exit, _, _) = try HostileInputTests.control(socket, ["reexec"])
            if exit == .exited(0) {
                try run.waitForEvent(.tookOver, after: mark)
                return
            }
        }
        Issue.record("overseerd stayed busy through 50 reexec requests")
    }

    /// The first `event` after `mark` whose message holds `text`: a poll between the upload of
    /// a signature and of its manifest sees them mismatched and refuses once, as a publisher's would.
    static func wait(_ run: RunningProcess, _ event: DaemonEvent, after mark: LogMark = .start, containing text: String,
                     timeout: Double) throws -> LoggedEvent {
        var occurrence = 1
        while true {
            let found = try run.waitForEvent(event, after: mark, occurrence: occurrence, timeout: timeout)
            if found.message.contains(text) { return found }
            occurrence += 1
        }
    }
}

extension MotoS3 {
    /// Uploads the file at `path` to `key` (binaries: `put` takes text).
    func upload(_ key: String, path: String) throws {
        let upload = try RunningProcess(["/usr/bin/env", "python3", "-c", """
            import sys, boto3
            s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
            s3.upload_file(sys.argv[4], sys.argv[2], sys.argv[3])
            """, endpoint, bucket, key, path], environment: Self.environment).waitForExit()
        #expect(upload == .exited(0), "upload \(key) to moto")
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import OverseerCore
import OverseerFetch
import OverseerProtocol
import OverseerSystem

/// Carries out the `UpgradeCycle`'s actions inside the supervisor's loop:
/// watching or fetching, staging, verifying, installing, restarting, rolling back.
final class UpgradeDriver {
    /// What is checked once at start: a mistake here stops overseerd before it binds anything.
    struct Plan {
        let settings: UpgradeSettings
        let key: Minisign.PublicKey?
        let fetchHelper: String?
        let fetchUser: (uid: UInt32, gid: UInt32)?

        init(_ settings: UpgradeSettings) throws(ConfigurationError) {
            self.settings = settings
            if let keyText = settings.minisignKey {
                var text = keyText
                if keyText.contains("/"), let contents = Self.read(keyText) { text = contents }
                do {
                    key = try Minisign.PublicKey(parsing: text)
                } catch {
                    throw ConfigurationError("bad --minisign-key \"\(keyText)\": \(error); give the .pub file or its base64 line")
                }
            } else {
                key = nil
            }
            if case .network = settings.source {
                let candidates = [settings.fetchHelperPath, Self.besideSelf("overseerd-fetch"),
                                  "/usr/libexec/overseerd/overseerd-fetch"].compactMap { $0 }
                guard let found = candidates.first(where: { access($0, X_OK) == 0 }) else {
                    throw ConfigurationError("overseerd-fetch not found (looked at \(candidates.joined(separator: ", "))); install it or give --fetch-helper PATH")
                }
                fetchHelper = found
            } else {
                fetchHelper = nil
            }
            if let user = settings.fetchUser {
                guard let entry = getpwnam(user) else {
                    throw ConfigurationError("bad --fetch-user \"\(user)\": no such user")
                }
                fetchUser = (entry.pointee.pw_uid, entry.pointee.pw_gid)
            } else {
                fetchUser = nil
            }
        }

        static func read(_ path: String) -> String? {
            guard let file = fopen(path, "r") else { return nil }
            defer { fclose(file) }
            var result = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = fread(&buffer, 1, buffer.count, file)
                if count <= 0 { break }
                result += buffer.prefix(count)
                if result.count > 1 << 16 { break }
            }
            return String(decoding: result, as: UTF8.self)
        }

        static func besideSelf(_ name: String) -> String? {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
            let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
            guard count > 0 else { return nil }
            let path = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard let slash = path.lastIndex(of: "/") else { return nil }
            return String(path[..<slash]) + "/" + name
        }
    }

    private let plan: Plan
    private unowned let host: Supervisor
    private var cycle: UpgradeCycle
    private var staging: StagingFile?
    private var watcher: (FileWatcher, UInt64)?
    private var settleIdentity: [Int] = []
    private var watchFailureLogged = false
    private var lastTakenIdentity: [Int] = []
    private var etag: String?
    private var lastModified: String?
    private var sidecars: [String: String] = [:]
    private var signatureTimestamp: Int64?
    /// The program file that gets replaced.
    private let target: String
    /// While an upgrade restarts: the binary every new generation must be.
    private(set) var expectedBinary: String?

    var settings: UpgradeSettings { plan.settings }

    /// - Parameter rejected: binaries an earlier image of overseerd rejected.
    init(plan: Plan, host: Supervisor, rejected: [String] = []) throws {
        self.plan = plan
        self.host = host
        let program = try host.resolvedProgram()
        target = Installer.target(of: program)
        let installed = host.binaryID(of: target)
        cycle = UpgradeCycle(installed: installed, steps: UpgradeCycle.steps(for: plan.settings),
                             interval: plan.settings.effectiveInterval, restartAfterInstall: !plan.settings.noRestart)
        cycle.remember(rejected: rejected)
        if case let .file(path) = plan.settings.source { startWatching(path) }
        host.logger.info("upgrades from \(plan.settings.source) into \(target) (checks: \(cycle.steps.isEmpty ? "none" : cycle.steps.map(\.description).joined(separator: ", ")))")
        feed(.pollDue)
    }

    /// Nothing under way: no fetch, check or install (a re-exec may go ahead).
    var isIdle: Bool { cycle.state == .idle && staging == nil }

    /// The binaries rejected so far.
    var rejected: [String] { cycle.rejected.sorted() }

    /// One line for `overseerd status`.
    var summary: String {
        let state: String = switch cycle.state {
        case .idle: "idle"
        case .fetching: "fetching"
        case let .verifying(step, sha256): "verifying \(sha256.prefix(12)) (\(step))"
        case let .installing(sha256): "installing \(sha256.prefix(12))"
        case let .restarting(sha256): "restarting into \(sha256.prefix(12))"
        }
        return "from \(settings.source), installed \(cycle.installed.prefix(12)), \(state), \(cycle.rejected.count) rejected"
    }

    func shutdown() {
        discardStaged()
    }

    /// Removes the staged file at once: the "upgrade rejected" line that
    /// follows must be true when it is read.
    private func discardStaged() {
        staging?.discard()
        staging = nil
    }

    // MARK: - Events

    private func feed(_ event: UpgradeCycle.Event) {
        for action in cycle.handle(event, jitter: Double.random(in: 0 ..< 1)) { perform(action) }
    }

    /// The generation started for an upgrade became ready, or did not.
    func restartFinished(binary: String, succeeded: Bool) {
        guard case let .restarting(sha256) = cycle.state, binary == sha256 else { return }
        expectedBinary = nil
        feed(.restartFinished(succeeded: succeeded, reason: nil))
    }

    private func startWatching(_ path: String) {
        do {
            let watcher = try FileWatcher(path: path)
            let token = try host.watch(watcher.fd.rawValue) { [unowned self] in fileEvent() }
            self.watcher = (watcher, token)
            watchFailureLogged = false
        } catch {
            // Tried again at every poll; said once until it works.
            guard !watchFailureLogged else { return }
            watchFailureLogged = true
            host.logger.warning("cannot watch \(path) with inotify (\(error)); polling every \(settings.effectiveInterval.shortDescription) instead")
        }
    }

    private func fileEvent() {
        guard let (watcher, token) = watcher else { return }
        switch watcher.drain() {
        case .none:
            return
        case .directoryGone:
            host.unwatch(watcher.fd.rawValue, token: token)
            watcher.close()
            self.watcher = nil
            host.logger.warning("the directory of \(settings.source) went away; polling until it is back")
        case .renamedIntoPlace:
            // rename(2) is atomic: the file is complete, take it at once.
            guard case let .file(path) = settings.source else { return }
            host.cancel(.upgradeSettle)
            let identity = ProcFS.fileIdentity(path)
            if !identity.isEmpty, identity != lastTakenIdentity { feed(.pollDue) }
        case .file:
            guard case let .file(path) = settings.source else { return }
            // Written in place: wait until it has stopped changing (same size and mtime over a short settle time).
            settleIdentity = ProcFS.fileIdentity(path)
            host.schedule(.upgradeSettle, after: .milliseconds(25)) { [unowned self] in settled(path) }
        }
    }

    private func settled(_ path: String) {
        let now = ProcFS.fileIdentity(path)
        if now != settleIdentity {
            settleIdentity = now
            host.schedule(.upgradeSettle, after: .milliseconds(25)) { [unowned self] in settled(path) }
            return
        }
        guard !now.isEmpty, now != lastTakenIdentity else { return }
        feed(.pollDue)
    }

    // MARK: - Actions

    private func perform(_ action: UpgradeCycle.Action) {
        switch action {
        case .startFetch:
            startFetch()
        case let .verify(step):
            verify(step)
        case .discardStaged:
            discardStaged()
            sidecars = [:]
        case let .install(sha256):
            install(sha256)
        case let .requestRestart(sha256):
            expectedBinary = sha256
            host.requestRestart(reason: "upgrade to \(sha256.prefix(12))")
        case .rollback:
            rollback()
        case let .schedulePoll(delay):
            if case let .file(path) = settings.source, watcher == nil { startWatching(path) }
            host.schedule(.upgradePoll, after: delay) { [unowned self] in feed(.pollDue) }
        case let .log(level, message):
            switch level {
            case .debug: host.logger.debug("\(message)")
            case .info: host.logger.info("\(message)")
            case .notice: host.logger.notice("\(message)")
            case .warning: host.logger.warning("\(message)")
            case .error: host.logger.error("\(message)")
            }
        }
    }

    private func newStagingFile() -> StagingFile? {
        do {
            return try StagingFile(beside: target)
        } catch {
            feed(.fetchFailed(reason: "cannot create a staging file beside \(target): \(error.reason)"))
            return nil
        }
    }

    private func startFetch() {
        sidecars = [:]
        switch settings.source {
        case let .file(path):
            let identity = ProcFS.fileIdentity(path)
            if identity.isEmpty {
                feed(.unchanged)
                return
            }
            if identity == lastTakenIdentity {
                feed(.unchanged)
                return
            }
            guard let staging = newStagingFile() else { return }
            do {
                _ = try staging.copy(from: path, limit: settings.maxBinarySize)
                try staging.seal()
                let (sha256, _) = try staging.digest()
                for suffix in [".sha256", ".minisig"] {
                    if let text = Plan.read(path + suffix) { sidecars[suffix] = text }
                }
                self.staging = staging
                lastTakenIdentity = identity
                feed(.fetched(sha256: sha256))
            } catch {
                feed(.fetchFailed(reason: "\(error)"))
            }
        case let .network(url):
            guard let staging = newStagingFile(), let helper = plan.fetchHelper else { return }
            self.staging = staging
            let limit = settings.fetchTimeout
            var arguments = [helper, "--output-fd", "3", "--max-size", String(settings.maxBinarySize),
                             "--max-time", String(max(1, limit.totalNanoseconds / 1_000_000_000))]
            if let etag { arguments += ["--etag", etag] }
            if let lastModified { arguments += ["--last-modified", lastModified] }
            if settings.sidecarChecksum { arguments += ["--sidecar", ".sha256"] }
            if settings.minisignKey != nil { arguments += ["--sidecar", ".minisig"] }
            if let endpoint = settings.s3Endpoint { arguments += ["--s3-endpoint", endpoint] }
            if let api = settings.githubAPIURL { arguments += ["--github-api-url", api] }
            if let pattern = settings.assetPattern { arguments += ["--asset-pattern", pattern] }
            arguments.append(url)
            do {
                try HelperProcess.start(on: host, label: "overseerd-fetch", arguments: arguments,
                                        environment: host.inheritableEnvironment, extraFD: staging.fd,
                                        // Its own --max-time ends a slow transfer; this ends a helper that hangs anyway.
                                        user: plan.fetchUser, timeout: limit + .seconds(5)) { [unowned self] exit, output in
                    fetchFinished(exit, output)
                }
            } catch {
                feed(.fetchFailed(reason: "cannot start \(helper): \(error)"))
            }
        }
    }

    private func fetchFinished(_ exit: ProcessExit, _ output: String) {
        let line = output.split(separator: "\n").last.map(String.init) ?? ""
        guard let report = try? FetchReport(parsing: line) else {
            feed(.fetchFailed(reason: "overseerd-fetch ended with \(exit) and no report"))
            return
        }
        switch (exit, report.result) {
        case (.exited(0), .notModified):
            feed(.unchanged)
        case (.exited(0), .downloaded):
            guard let staging else { return }
            do {
                try staging.seal()
                let (sha256, size) = try staging.digest()
                guard size <= settings.maxBinarySize else {
                    feed(.fetchFailed(reason: "download is \(size) bytes, over --max-binary-size"))
                    return
                }
                etag = report.etag
                lastModified = report.lastModified
                for suffix in [".sha256", ".minisig"] {
                    if let text = report.sidecar(suffix) { sidecars[suffix] = text }
                }
                feed(.fetched(sha256: sha256))
            } catch {
                feed(.fetchFailed(reason: "cannot hash the download: \(error)"))
            }
        default:
            feed(.fetchFailed(reason: report.message ?? "overseerd-fetch ended with \(exit)"))
        }
    }

    private func verify(_ step: UpgradeCycle.Step) {
        guard let staging else { return }
        switch step {
        case .checksum:
            let expected = settings.sha256 ?? sidecars[".sha256"].flatMap(ChecksumFile.sha256(in:))
            guard let expected else {
                feed(.stepFailed(step, reason: "no checksum to compare with (the .sha256 file is missing or malformed)"))
                return
            }
            let actual = (try? staging.digest().sha256) ?? ""
            if actual == expected {
                feed(.stepPassed(step))
            } else {
                feed(.stepFailed(step, reason: "sha256 is \(actual.prefix(16))…, expected \(expected.prefix(16))…"))
            }
        case .signature:
            guard let key = plan.key else { feed(.stepPassed(step)); return }
            guard let text = sidecars[".minisig"] else {
                feed(.stepFailed(step, reason: "no .minisig signature beside the binary"))
                return
            }
            do {
                let signature = try Minisign.Signature(parsing: text)
                try Minisign.verify(fileAt: staging.path, signature: signature, key: key)
                guard let timestamp = signature.timestamp else {
                    feed(.stepFailed(step, reason: "the trusted comment has no timestamp: (sign without -t so that older binaries cannot be replayed)"))
                    return
                }
                let installedTime = Int64(ProcFS.modificationTime(target))
                guard timestamp > installedTime else {
                    feed(.stepFailed(step, reason: "signed at \(timestamp), not after the installed binary (\(installedTime)): an older binary cannot replace a newer one"))
                    return
                }
                signatureTimestamp = timestamp
                feed(.stepPassed(step))
            } catch {
                feed(.stepFailed(step, reason: error.description))
            }
        case .check:
            runStartCheck(staging)
        case .preUpgrade:
            guard let command = settings.preUpgrade else { feed(.stepPassed(step)); return }
            runHelper(label: "pre-upgrade command", step: step,
                      arguments: ["/bin/sh", "-c", command + " \"$1\"", "overseerd-pre-upgrade", staging.path],
                      environment: host.inheritableEnvironment, timeout: .seconds(300)) { exit, _ in
                exit == .exited(0) ? nil : "exited with \(exit)"
            }
        }
    }

    private func runStartCheck(_ staging: StagingFile) {
        _ = fchmod(staging.fd, 0o700)
        switch settings.check {
        case .none:
            feed(.stepPassed(.check))
        case .token:
            var bytes = [UInt8](repeating: 0, count: 16)
            for index in bytes.indices { bytes[index] = UInt8.random(in: 0 ... 255) }
            let token = bytes.map { String($0 >> 4, radix: 16) + String($0 & 0xf, radix: 16) }.joined()
            runHelper(label: "start check", step: .check, arguments: [staging.path],
                      environment: host.inheritableEnvironment + ["\(EnvironmentName.checkToken)=\(token)"],
                      timeout: settings.checkTimeout) { exit, output in
                let printed = output.split(separator: "\n").contains { $0.trimmingCharacters() == token }
                if exit != .exited(0) { return "exited with \(exit)" + (printed ? "" : " without printing the token") }
                return printed ? nil : "it did not print OVERSEER_CHECK_TOKEN on stdout (got \(output.isEmpty ? "nothing" : "\(output.utf8.count) other bytes"))"
            }
        case let .exec(arguments):
            runHelper(label: "start check", step: .check, arguments: [staging.path] + arguments,
                      environment: host.inheritableEnvironment, timeout: settings.checkTimeout) { exit, _ in
                exit == .exited(0) ? nil : "exited with \(exit)"
            }
        }
    }

    /// Runs a helper for `step`; `judge` returns nil to pass or the reason to fail.
    private func runHelper(label: String, step: UpgradeCycle.Step, arguments: [String], environment: [String],
                           timeout: Duration, judge: @escaping (ProcessExit, String) -> String?) {
        do {
            var helper: HelperProcess?
            helper = try HelperProcess.start(on: host, label: label, arguments: arguments, environment: environment,
                                             timeout: timeout) { [unowned self] exit, output in
                if helper?.timedOut == true {
                    feed(.stepFailed(step, reason: "no answer within \(timeout.shortDescription)"))
                } else if let reason = judge(exit, output) {
                    feed(.stepFailed(step, reason: reason))
                } else {
                    feed(.stepPassed(step))
                }
            }
        } catch {
            feed(.stepFailed(step, reason: "cannot run it: \(error)"))
        }
    }

    private func install(_ sha256: String) {
        guard let staging else { return }
        do {
            try Installer.install(staging, over: target, modificationTime: signatureTimestamp)
            self.staging = nil
            signatureTimestamp = nil
            feed(.installed)
        } catch {
            feed(.installFailed(reason: error.description))
        }
    }

    private func rollback() {
        do {
            try Installer.rollback(target)
            let restored = host.binaryID(of: target)
            cycle.rolledBack(to: restored)
            expectedBinary = nil
            host.logger.notice("rolled back \(target) to \(restored.prefix(12))")
        } catch {
            host.logger.error("\(error) — the failed binary stays installed; the serving generation keeps running")
        }
    }
}

extension Substring {
    func trimmingCharacters() -> Substring {
        var result = self
        while let last = result.last, last == "\r" || last == " " { result = result.dropLast() }
        while let first = result.first, first == " " { result = result.dropFirst() }
        return result
    }
}

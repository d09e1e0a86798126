import OverseerCore
import OverseerFetch
import OverseerProtocol
import OverseerSystem

/// The checks a staged binary goes through: checksum, signature, start check, pre-upgrade command.
extension UpgradeDriver {
    func verify(_ step: UpgradeCycle.Step) {
        guard let staging, case let .verifying(_, sha256) = cycle.state else {
            feed(.abandoned(reason: "\(step): nothing is staged"))
            return
        }
        switch step {
        case .checksum:
            let reason = UpgradeVerification.checksum(actual: sha256, configured: manifestTracking.pendingRelease?.sha256 ?? settings.sha256,
                                                      sidecar: sidecars[".sha256"])
            feed(reason.map { .stepFailed(step, reason: $0) } ?? .stepPassed(step))
        case .signature:
            verifySignature(staging)
        case .check:
            runStartCheck(staging)
        case .preUpgrade:
            guard let command = settings.preUpgrade else {
                feed(.stepFailed(step, reason: "no --pre-upgrade command is configured"))
                return
            }
            runHelper(step: step, HelperRequest(
                label: "pre-upgrade command",
                arguments: ["/bin/sh", "-c", command + " \"$1\"", "overseerd-pre-upgrade", staging.path],
                environment: host.inheritableEnvironment, timeout: .seconds(300))) { result in
                UpgradeVerification.commandCheck(exit: result.exit)
            }
        }
    }

    private func verifySignature(_ staging: StagingFile) {
        guard !plan.keys.isEmpty else {
            feed(.stepFailed(.signature, reason: "no --minisign-key is loaded"))
            return
        }
        guard let text = sidecars[".minisig"] else {
            feed(.stepFailed(.signature, reason: "no .minisig signature beside the binary"))
            return
        }
        let signatures: [Minisign.Signature]
        do {
            signatures = try Minisign.signatures(parsing: text)
        } catch {
            feed(.stepFailed(.signature, reason: error.description))
            return
        }
        let path = staging.path
        let keys = plan.keys
        let required = settings.signaturesRequired
        do {
            // BLAKE2b over the whole file: as long as a hash, so off the loop.
            try inBackground({ Minisign.signers(ofFileAt: path, signatures: signatures, keys: keys) },
                             then: { [unowned self] signers in
                guard signers.keys.count >= required else {
                    feed(.stepFailed(.signature, reason: signers.shortfall(required: required, keys: keys, signatures: signatures)))
                    return
                }
                let installedAt = Int64(ProcFS.modificationTime(target))
                if let reason = UpgradeVerification.antiReplay(signedAt: signers.oldestTimestamp, installedAt: installedAt) {
                    feed(.stepFailed(.signature, reason: reason))
                    return
                }
                signatureTimestamp = signers.oldestTimestamp
                feed(.stepPassed(.signature))
            })
        } catch {
            feed(.abandoned(reason: "cannot start checking the signature: \(error)"))
        }
    }

    private func runStartCheck(_ staging: StagingFile) {
        do {
            try staging.setMode(0o700)
        } catch {
            feed(.abandoned(reason: "cannot make the staged file executable: \(error)"))
            return
        }
        switch settings.check {
        case .none:
            feed(.stepPassed(.check))
        case .token:
            var bytes = [UInt8](repeating: 0, count: 16)
            for index in bytes.indices { bytes[index] = UInt8.random(in: 0 ... 255) }
            let token = bytes.map { String($0 >> 4, radix: 16) + String($0 & 0xf, radix: 16) }.joined()
            runHelper(step: .check, HelperRequest(
                label: "start check", arguments: [staging.path],
                environment: host.inheritableEnvironment + ["\(EnvironmentName.checkToken)=\(token)"],
                timeout: settings.checkTimeout)) { result in
                UpgradeVerification.tokenCheck(exit: result.exit, output: result.output, token: token)
            }
        case let .exec(arguments):
            runHelper(step: .check, HelperRequest(
                label: "start check", arguments: [staging.path] + arguments,
                environment: host.inheritableEnvironment, timeout: settings.checkTimeout)) { result in
                UpgradeVerification.commandCheck(exit: result.exit)
            }
        }
    }

    /// Runs a helper for `step`; `judge` returns nil to pass or the reason to fail.
    private func runHelper(step: UpgradeCycle.Step, _ request: HelperRequest, judge: @escaping (HelperResult) -> String?) {
        let timeout = request.timeout
        do {
            try helpers.start(request) { [unowned self] result in
                if result.timedOut {
                    feed(.stepFailed(step, reason: "no answer within \(timeout.shortDescription)"))
                } else if let reason = judge(result) {
                    feed(.stepFailed(step, reason: reason))
                } else {
                    feed(.stepPassed(step))
                }
            }
        } catch {
            feed(.stepFailed(step, reason: "cannot run it: \(error)"))
        }
    }
}

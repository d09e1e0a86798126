import OverseerProtocol

/// The judgements of the upgrade checks, without any I/O: each returns nil
/// when the candidate passes and the reason when it does not. Every check
/// fails closed: a value that is missing is a failure, never a pass.
public enum UpgradeVerification {
    /// The candidate's SHA-256 against `--sha256`, or else the `.sha256` sidecar's text.
    public static func checksum(actual: String, configured: String?, sidecar: String?) -> String? {
        let expected = configured ?? sidecar.flatMap(ChecksumFile.sha256(in:))
        guard let expected else {
            return sidecar == nil ? "no checksum to compare with (no --sha256, and no .sha256 file beside the binary)"
                : "no checksum to compare with (the .sha256 file holds no 64-digit hex hash)"
        }
        guard SHA256Hex.isValid(actual.lowercased()) else { return "the candidate's own hash is missing or malformed (\(actual.prefix(16)))" }
        if actual.lowercased() == expected.lowercased() { return nil }
        return "sha256 is \(actual.prefix(16))…, expected \(expected.prefix(16))…"
    }

    /// minisign's timestamp rule: a signature must be newer than the installed
    /// binary, so that an older signed binary cannot be replayed over a newer one.
    public static func antiReplay(signedAt: Int64?, installedAt: Int64) -> String? {
        guard let signedAt else {
            return "the trusted comment has no timestamp: (sign without -t so that older binaries cannot be replayed)"
        }
        guard signedAt > installedAt else {
            return "signed at \(signedAt), not after the installed binary (\(installedAt)): an older binary cannot replace a newer one"
        }
        return nil
    }

    /// The echo-token start check: the candidate must exit 0 and print the token on a line of its own.
    public static func tokenCheck(exit: ProcessExit, output: String, token: String) -> String? {
        let printed = output.split(separator: "\n").contains { line in
            var line = line
            while let last = line.last, last == "\r" || last == " " { line = line.dropLast() }
            while let first = line.first, first == " " { line = line.dropFirst() }
            return line == token
        }
        if exit != .exited(0) { return "exited with \(exit)" + (printed ? "" : " without printing the token") }
        return printed ? nil : "it did not print OVERSEER_CHECK_TOKEN on stdout (got \(output.isEmpty ? "nothing" : "\(output.utf8.count) other bytes"))"
    }

    /// A check command or pre-upgrade command: exit 0 passes.
    public static func commandCheck(exit: ProcessExit) -> String? {
        exit == .exited(0) ? nil : "exited with \(exit)"
    }

    /// The hash overseerd-fetch reported for the bytes it wrote, checked for form
    /// and against the size overseerd sees in the staged file.
    public static func fetchedHash(reported: String?, reportedSize: Int64?, stagedSize: Int64, limit: Int64,
                                   expectedSize: Int64? = nil) -> Result<String, FetchRejection> {
        if let reason = sizeMismatch(stagedSize, expected: expectedSize) { return .failure(reason) }
        guard stagedSize <= limit else { return .failure(.init("download is \(stagedSize) bytes, over --max-binary-size")) }
        guard let reported, SHA256Hex.isValid(reported.lowercased()) else { return .failure(.init("overseerd-fetch reported no valid sha256 for the download")) }
        if let reportedSize, reportedSize != stagedSize {
            return .failure(.init("overseerd-fetch reported \(reportedSize) bytes but \(stagedSize) are staged"))
        }
        return .success(reported.lowercased())
    }
}

extension UpgradeVerification {
    /// A manifest's `size` is the binary's exact length: a shorter or longer one is refused before it is hashed.
    public static func sizeMismatch(_ size: Int64, expected: Int64?) -> FetchRejection? {
        guard let expected, size != expected else { return nil }
        return FetchRejection("the binary is \(size) bytes, the manifest's \"size\" says \(expected)")
    }
}

/// Why a fetched candidate was not taken.
public struct FetchRejection: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

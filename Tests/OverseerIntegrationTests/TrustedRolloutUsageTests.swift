import Foundation
import OverseerCore
import OverseerTestSupport
import Testing

/// The command line of trusted rollouts (docs/SECURITY.md): a network manifest
/// is signed unless `--allow-unsigned-manifest` says otherwise, and a manifest
/// needs a state directory. Each mistake is one line and exit 64, from the real binary.
@Suite struct TrustedRolloutUsageTests {
    static let key = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"

    static let cases: [CommandLineMessageTests.Case] = [
        .init(arguments: ["--manifest", "https://r.example.com/m.json", "--state-directory", "/tmp/x", "--", "true"],
              line: "--manifest https://r.example.com/m.json needs --minisign-key: a manifest fetched over the network is signed, or anyone on the path picks what every host runs; give --allow-unsigned-manifest to take it on the transport's word"),
        .init(arguments: ["--manifest", "s3://bucket/m.json", "--state-directory", "/tmp/x", "--", "true"],
              line: "--manifest s3://bucket/m.json needs --minisign-key: a manifest fetched over the network is signed, or anyone on the path picks what every host runs; give --allow-unsigned-manifest to take it on the transport's word"),
        .init(arguments: ["--manifest", "https://r.example.com/m.json", "--minisign-key", key, "--", "true"],
              line: "--manifest needs --state-directory (or $STATE_DIRECTORY): the highest manifest sequence taken must survive restarts, or an old manifest replayed after one would be followed"),
        .init(arguments: ["--manifest", "/srv/m.json", "--", "true"],
              line: "--manifest needs --state-directory (or $STATE_DIRECTORY): the highest manifest sequence taken must survive restarts, or an old manifest replayed after one would be followed"),
        .init(arguments: ["--manifest", "https://r.example.com/m.json", "--minisign-key", key, "--signatures-required", "2",
                          "--state-directory", "/tmp/x", "--", "true"],
              line: "--signatures-required 2 is not between 1 and the 1 --minisign-key given"),
        .init(arguments: ["--manifest", "https://r.example.com/m.json", "--minisign-key", key, "--signatures-required", "two",
                          "--state-directory", "/tmp/x", "--", "true"],
              line: "bad --signatures-required \"two\": give a whole number from 1 to the number of --minisign-key"),
        .init(arguments: ["--manifest", "https://r.example.com/m.json", "--minisign-key", key, "--allow-unsigned-manifest",
                          "--state-directory", "/tmp/x", "--", "true"],
              line: "--allow-unsigned-manifest and --minisign-key contradict each other: leave out one"),
        .init(arguments: ["--fetch", "https://r.example.com/app", "--allow-unsigned-manifest", "--", "true"],
              line: "--allow-unsigned-manifest needs --manifest: it is about release manifests"),
        .init(arguments: ["--release-name", "app", "--", "true"],
              line: "--release-name needs --fetch or --manifest: it applies to new binaries, and none are fetched"),
        .init(arguments: ["--", "true"], environment: ["OVERSEERD_ALLOW_UNSIGNED_MANIFEST": "1"],
              line: "--allow-unsigned-manifest needs --fetch or --manifest: it applies to new binaries, and none are fetched"),
        // Red team: the same public key under another key id (an id is not signed) would let one signer count twice.
        .init(arguments: ["--manifest", "https://r.example.com/m.json", "--minisign-key", key, "--minisign-key", "RWQBAgMEBQYHCHmlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3",
                          "--signatures-required", "2", "--state-directory", "/tmp/x", "--", "true"],
              line: "--minisign-key \"RWQBAgMEBQYHCHmlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\" is another --minisign-key under another key id (a key id is not signed): give each key once (--signatures-required counts distinct keys)"),
    ]

    @Test(arguments: cases)
    func usageErrorIsOneClearLine(_ testCase: CommandLineMessageTests.Case) throws {
        let run = try RunningProcess.overseerd(testCase.arguments, environment: testCase.environment)
        #expect(try run.waitForExit() == .exited(OverseerExitCode.usage))
        #expect(run.stderrText == "overseerd: \(testCase.line) — see overseerd --help\n")
    }

    /// Today's behaviour, asked for by name: an unsigned network manifest, with its warning.
    @Test func allowUnsignedManifestIsAccepted() throws {
        let scratch = ScratchDirectory()
        let run = try RunningProcess.overseerd(["--check-configuration", "--manifest", "https://r.example.com/m.json", "--allow-unsigned-manifest",
                                                "--state-directory", scratch.file("state"), "--", "/bin/true"])
        #expect(try run.waitForExit() == .exited(0), "\(run.stderrText)")
    }
}

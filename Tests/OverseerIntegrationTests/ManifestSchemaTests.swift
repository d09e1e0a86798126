import Foundation
import OverseerProtocol
import OverseerTestSupport
import Testing

/// docs/release-manifest.schema.json says what the parser takes: python's
/// jsonschema (Debian python3-jsonschema) and `ReleaseManifest(parsing:)` agree on each case.
@Suite struct ManifestSchemaTests {
    static let hash = String(repeating: "ab", count: 32)
    static let cases: [(String, Bool)] = [
        (#"{"version":"2.0.0","url":"u","sha256":"\#(hash)"}"#, true),
        (#"{"name":"app","sequence":42,"expires":"2027-01-31T00:00:00Z","version":"2.0.0","url":"app-{os}-{arch}","sha256":"\#(hash)","size":7340032,"staging_percent":30,"yanked":["1.9.0"]}"#, true),
        (#"{"name":"app","sequence":1,"version":"1","url":"u","sha256":"\#(hash)","size":1,"keys":["RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"],"signatures_required":1}"#, true),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","sequence":0}"#, false),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","sequence":"3"}"#, false),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","size":0}"#, false),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","size":2.5}"#, false),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","name":""}"#, false),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","keys":[]}"#, false),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","keys":["a b"]}"#, false),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","signatures_required":1}"#, false),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","keys":["RWQ"],"signatures_required":17}"#, false),
        (#"{"version":"1","url":"u","sha256":"abc"}"#, false),
        (#"{"version":"1","url":"u","sha256":"\#(hash)","staging_percent":101}"#, false),
        (#"{"url":"u","sha256":"\#(hash)"}"#, false),
    ]

    @Test func theSchemaAndTheParserAgree() throws {
        let probe = try RunningProcess(["/usr/bin/env", "python3", "-c", "import jsonschema"]).waitForExit()
        try #require(probe == .exited(0), "python3 cannot import jsonschema: install the Debian package python3-jsonschema (scripts/setup)")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let script = """
            import json, sys, jsonschema
            schema = json.load(open(sys.argv[1]))
            jsonschema.Draft202012Validator.check_schema(schema)
            validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
            for line in sys.stdin:
                print("valid" if validator.is_valid(json.loads(line)) else "invalid", flush=True)
            """
        let input = Self.cases.map(\.0).joined(separator: "\n") + "\n"
        let scratch = ScratchDirectory()
        let inputPath = scratch.file("cases")
        try Data(input.utf8).write(to: URL(fileURLWithPath: inputPath))
        let (exit, output, errors) = try RunningProcess(["/bin/sh", "-c", "exec python3 -c \"$0\" \"$1\" < \"$2\"", script,
                                                         root + "/docs/release-manifest.schema.json", inputPath]).waitForExitWithOutput()
        #expect(exit == .exited(0), "\(errors)")
        let verdicts = output.split(separator: "\n").map { $0 == "valid" }
        #expect(verdicts.count == Self.cases.count)
        for ((text, valid), schemaSays) in zip(Self.cases, verdicts) {
            let parserSays = (try? ReleaseManifest(parsing: Array(text.utf8))) != nil
            #expect(parserSays == valid, "parser on \(text)")
            #expect(schemaSays == valid, "schema on \(text)")
        }
    }
}

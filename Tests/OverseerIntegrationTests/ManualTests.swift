import Foundation
import OverseerTestSupport
import Testing

/// The man page documents every flag `overseerd --help` lists.
@Suite struct ManualTests {
    @Test func everyFlagIsInTheManPage() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let manual = try String(contentsOfFile: root + "/docs/man/overseerd.8.scd", encoding: .utf8)
        let help = try RunningProcess([Binaries.overseerd, "--help"]).waitForExitWithOutput().1
        let flags = Set(help.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," }).filter { $0.hasPrefix("--") && $0.count > 3 && !$0.contains("`") }
            .map { String($0.prefix { $0 != "=" && $0 != "<" && $0 != ")" && $0 != "." }) })
        #expect(flags.count > 25)
        for flag in flags {
            #expect(manual.contains("*\(flag)*"), "\(flag) is missing from docs/man/overseerd.8.scd")
        }
    }
}

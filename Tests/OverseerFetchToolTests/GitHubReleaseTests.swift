@testable import overseerd_fetch
import Testing

/// Reading a release and choosing its asset, without a network.
@Suite struct GitHubReleaseTests {
    @Test func readsTagAndAssetsAndIgnoresTheRest() throws {
        let json = #"""
        {"tag_name" : "v2.0.1", "body": "see \"assets\": [none]", "author": {"assets": "no"},
         "assets": [
           {"name":"tool-linux-amd64","uploader":{"name":"x"},"browser_download_url":"https:\/\/h\/tool-linux-amd64"},
           {"browser_download_url":"https://h/tool-linux-amd64.sha256", "name":"tool-linux-amd64.sha256"}
         ]}
        """#
        let release = try GitHubRelease(json: Array(json.utf8))
        #expect(release.tag == "v2.0.1")
        #expect(release.assets == [
            .init(name: "tool-linux-amd64", downloadURL: "https://h/tool-linux-amd64"),
            .init(name: "tool-linux-amd64.sha256", downloadURL: "https://h/tool-linux-amd64.sha256"),
        ])
    }

    @Test(arguments: ["[]", #"{"assets":[]}"#, #"{"tag_name":"v1"}"#, #"{"tag_name":"v1","assets":[{"name":"a"}]}"#, "{"])
    func rejectsOtherShapes(json: String) {
        #expect(throws: FetchFailure.self) { try GitHubRelease(json: Array(json.utf8)) }
    }

    private func release(_ names: [String]) -> GitHubRelease {
        GitHubRelease(tag: "v1", assets: names.map { .init(name: $0, downloadURL: "https://h/" + $0) })
    }

    @Test(arguments: [
        (["t-Linux-X86_64.tar", "t-darwin-x86_64", "t-linux-arm64"], ["x86_64", "amd64"], "t-Linux-X86_64.tar"),
        (["t_linux_amd64", "t_linux_amd64.sha256", "t_linux_amd64.minisig", "t_windows_amd64.exe"], ["x86_64", "amd64"], "t_linux_amd64"),
        (["t-linux-x86_64", "t-linux-aarch64", "t-linux-aarch64.sig", "t-linux-aarch64.asc"], ["aarch64", "arm64"], "t-linux-aarch64"),
    ])
    func choosesByOSAndArchitecture(names: [String], architecture: [String], expected: String) throws {
        var selector = AssetSelector(pattern: nil)
        selector.architectureNames = architecture
        #expect(try selector.select(from: release(names), repository: "o/r").name == expected)
    }

    @Test func refusesToGuessBetweenTwo() {
        var selector = AssetSelector(pattern: nil)
        selector.architectureNames = ["x86_64", "amd64"]
        #expect(throws: FetchFailure.self) { try selector.select(from: release(["a-linux-amd64", "a-linux-amd64.gz"]), repository: "o/r") }
    }

    @Test func thePatternIsAnFnmatchGlob() throws {
        let selector = AssetSelector(pattern: "tool-*-darwin-arm64")
        let names = ["tool-1-linux-x86_64", "tool-1-darwin-arm64", "tool-1-darwin-arm64.sha256"]
        #expect(try selector.select(from: release(names), repository: "o/r").name == "tool-1-darwin-arm64")
        #expect(throws: FetchFailure.self) { try AssetSelector(pattern: "TOOL*").select(from: release(names), repository: "o/r") }
    }
}

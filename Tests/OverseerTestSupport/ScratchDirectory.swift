import Foundation

/// A scratch directory under /tmp, removed with everything in it at the end of the test.
public final class ScratchDirectory: @unchecked Sendable {
    public let path: String

    public init() {
        var template = Array("/tmp/overseerd-test-XXXXXX".utf8CString)
        path = String(cString: mkdtemp(&template)!)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    public func file(_ name: String) -> String { path + "/" + name }
}

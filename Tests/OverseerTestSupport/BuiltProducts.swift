#if canImport(Glibc)
import Glibc
#endif

/// The package's executables, as the tests start them: built beside the test runner.
public enum BuiltProducts {
    /// The directory of /proc/self/exe, above any `NAME.xctest` (when the runner is inside a bundle directory).
    public static let directory: String = {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let count = buffer.withUnsafeMutableBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { readlink("/proc/self/exe", $0.baseAddress!, $0.count) }
        }
        let executable = count > 0 ? String(decoding: buffer.prefix(count), as: UTF8.self) : CommandLine.arguments[0]
        var components = executable.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        while components.contains(where: { $0.hasSuffix(".xctest") }) { components = components.dropLast() }
        return components.joined(separator: "/")
    }()

    /// The built executable `name`.
    public static func path(_ name: String) -> String { directory + "/" + name }
}

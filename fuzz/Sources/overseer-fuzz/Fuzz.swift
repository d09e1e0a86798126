#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CFuzzerDriver

/// The parser families, by the name FUZZ_TARGET gives (and fuzz/corpus/<name>/ holds seeds for).
let targets: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
    "listen": fuzzListen,
    "values": fuzzValues,
    "handover": fuzzHandover,
    "environment": fuzzEnvironment,
    "notify": fuzzNotify,
    "fetch-report": fuzzFetchReport,
    "control": fuzzControl,
    "minisign": fuzzMinisign,
    "metrics": fuzzMetrics,
    "manifest": fuzzManifest,
]

nonisolated(unsafe) var selected: ((UnsafeRawBufferPointer) -> Void)?

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let name = getenv("FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = targets[name] else {
        let known = targets.keys.sorted().joined(separator: ", ")
        printError("overseer-fuzz: set FUZZ_TARGET to one of: \(known) (got \"\(name)\")")
        exit(64)
    }
    selected = target
    return 0
}

/// SwiftPM links an executable with `main` pointing at the module's entry point, so
/// libFuzzer's own `main` is not reached: hand over to its driver from here.
@main
enum OverseerFuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            testOneInput(data, size)
        })
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    selected!(UnsafeRawBufferPointer(start: count == 0 ? nil : start, count: count))
    return 0
}

/// A property that must hold: on failure, say which and with what, and abort so
/// that libFuzzer saves the input as crash-*.
func require(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition {
        printError("PROPERTY FAILED (\(file):\(line)): \(message())")
        abort()
    }
}

func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// The input as text, invalid UTF-8 replaced, as the daemon reads files and datagrams.
func text(_ bytes: UnsafeRawBufferPointer) -> String {
    String(decoding: bytes, as: UTF8.self)
}

/// Structured input: pulls typed values off the front of the bytes (zeros once they run out).
struct ByteReader {
    var bytes: ArraySlice<UInt8>

    init(_ buffer: UnsafeRawBufferPointer) { bytes = ArraySlice(buffer) }

    var isEmpty: Bool { bytes.isEmpty }

    mutating func byte() -> UInt8 { bytes.popFirst() ?? 0 }

    mutating func bool() -> Bool { byte() & 1 == 1 }

    mutating func integer<T: FixedWidthInteger>(_: T.Type = T.self) -> T {
        var value: T = 0
        for _ in 0 ..< MemoryLayout<T>.size { value = value << 8 | T(truncatingIfNeeded: byte()) }
        return value
    }

    /// A length byte, then that many bytes decoded as UTF-8.
    mutating func string(maxLength: Int = 64) -> String {
        let length = min(Int(byte()) % (maxLength + 1), bytes.count)
        let raw = bytes.prefix(length)
        bytes = bytes.dropFirst(length)
        return String(decoding: raw, as: UTF8.self)
    }

    /// nil, or a string that is not empty (the formats write nil as an empty field).
    mutating func optionalString(maxLength: Int = 64) -> String? {
        guard bool() else { return nil }
        let value = string(maxLength: maxLength)
        return value.isEmpty ? nil : value
    }

    /// The rest, as text.
    mutating func rest() -> String {
        defer { bytes = [] }
        return String(decoding: bytes, as: UTF8.self)
    }
}

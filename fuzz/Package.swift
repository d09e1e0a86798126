// swift-tools-version:6.0
import PackageDescription

// The libFuzzer harness for overseerd's pure parsers. Its own package so that the
// fuzzer flags never reach the main build; run it with fuzz/run, which builds with
//   swift build -c debug --scratch-path ../.build-fuzz \
//     -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
// (flags on the command line, not unsafeFlags, so that the parsers themselves are
// instrumented for coverage, not only the harness).
let package = Package(
    name: "overseerd-fuzz",
    dependencies: [
        .package(name: "overseerd", path: ".."),
    ],
    targets: [
        // One executable for every parser family, chosen by FUZZ_TARGET: one link
        // of a sanitized binary instead of eight, and one place for the checks' helpers.
        .executableTarget(name: "overseer-fuzz", dependencies: [
            "CFuzzerDriver",
            .product(name: "OverseerCore", package: "overseerd"),
            .product(name: "OverseerProtocol", package: "overseerd"),
            .product(name: "OverseerFetch", package: "overseerd"),
        ]),
        // The declaration of libFuzzer's LLVMFuzzerRunDriver, which the harness's main calls.
        .target(name: "CFuzzerDriver"),
    ]
)

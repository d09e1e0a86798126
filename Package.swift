// swift-tools-version:6.0
import PackageDescription

// Dependencies are kept to what the field already runs on every host:
// - swift-argument-parser: the CLI (flags, --help, exit code 64 on usage errors).
// - swift-log: the logging API every Swift server library speaks.
// - swift-system: typed FileDescriptor/Errno/FilePath at module boundaries.
// - libsystemd (system library): sd_notify and friends, as systemd itself ships them.
// - libsodium (system library): SHA-256 of the program (OVERSEER_BINARY_ID) now,
//   BLAKE2b and Ed25519 for signature checks later; small, no dependencies of its own.
let package = Package(
    name: "overseerd",
    products: [
        .executable(name: "overseerd", targets: ["overseerd"]),
        .library(name: "OverseerChild", targets: ["OverseerChild"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
    ],
    targets: [
        // Pure: the wire formats a child sees (LISTEN_*, NOTIFY_SOCKET messages, OVERSEER_*).
        .target(name: "OverseerProtocol"),
        // Pure: configuration, listen addresses, durations, exit statuses, the supervision state machine.
        .target(name: "OverseerCore", dependencies: ["OverseerProtocol"]),
        // C: fork/exec of the child and the few syscalls Swift cannot call directly.
        .target(name: "COverseerShims"),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd",
                       providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),
        // The thin syscall layer.
        .target(name: "OverseerSystem", dependencies: [
            "OverseerCore", "OverseerProtocol", "COverseerShims", "CSystemd", "CSodium",
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // The supervisor: one event loop that owns all state.
        .target(name: "OverseerDaemon", dependencies: [
            "OverseerCore", "OverseerSystem",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "overseerd", dependencies: [
            "OverseerDaemon", "OverseerCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The library a Swift child links: Glibc only.
        .target(name: "OverseerChild", dependencies: ["OverseerProtocol"]),
        // A child program for the tests: reports what it was given, serves HTTP, misbehaves on request.
        .executableTarget(name: "OverseerTestChild", dependencies: ["OverseerChild"]),

        .testTarget(name: "OverseerProtocolTests", dependencies: ["OverseerProtocol"]),
        .testTarget(name: "OverseerCoreTests", dependencies: ["OverseerCore"]),
        .testTarget(name: "OverseerSystemTests", dependencies: ["OverseerSystem", "OverseerChild"]),
        .testTarget(name: "OverseerIntegrationTests", dependencies: [
            "OverseerSystem", "overseerd", "OverseerTestChild",
        ]),
    ]
)

// swift-tools-version:6.0
import PackageDescription

// Dependencies are kept to what the field already runs on every host:
// - swift-argument-parser: the CLI (flags, --help, exit code 64 on usage errors).
// - swift-log: the logging API every Swift server library speaks.
// - swift-system: typed FileDescriptor/Errno/FilePath at module boundaries.
// - libsystemd (system library): sd_notify and friends, as systemd itself ships them, and
//   the journal's native protocol (sd_journal_send). Its cost, measured on a static Swift
//   program that only links it and libsodium (Debian 12: 8 more libraries, libgcrypt,
//   libgpg-error, liblzma, libzstd, liblz4, libcap among them): +1.3 MB VmRSS, +0.66 MB Pss,
//   +1 ms from exec to main (bench/README.md, issue 15). Kept: the protocols are small, but
//   the journal's field encoding and the fd store are systemd's own to get right.
// - libsodium (system library): SHA-256 of downloads as they are staged, BLAKE2b-512 and
//   Ed25519 for minisign signatures; small, no dependencies of its own.
// - libgcrypt (system library): SHA-256 of a whole program file (OVERSEER_BINARY_ID, the
//   hash of a staged download checked again): it uses the CPU's SHA extensions, libsodium's
//   SHA-256 is portable C. Measured here on a 50 MB file: see BinaryIdentity. Already mapped
//   into overseerd as a dependency of Debian's libsystemd, so it costs no extra library.
let package = Package(
    name: "overseerd",
    products: [
        .executable(name: "overseerd", targets: ["overseerd"]),
        .executable(name: "overseerd-fetch", targets: ["overseerd-fetch"]),
        .library(name: "OverseerChild", targets: ["OverseerChild"]),
        .library(name: "OverseerChildNIO", targets: ["OverseerChildNIO"]),
        // The pure parsers, exported for the libFuzzer harness in fuzz/ (its own package).
        .library(name: "OverseerCore", targets: ["OverseerCore"]),
        .library(name: "OverseerProtocol", targets: ["OverseerProtocol"]),
        .library(name: "OverseerFetch", targets: ["OverseerFetch"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        // - swift-nio: only for OverseerChildNIO (and its example), the adapter a SwiftNIO
        //   child links; the daemon never links NIO.
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        // - swift-service-lifecycle: the graceful-shutdown `Service` of OverseerChildNIO, the
        //   lifecycle API Swift server frameworks (Hummingbird, Vapor) already run in.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
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
        .systemLibrary(name: "CGcrypt", pkgConfig: "libgcrypt",
                       providers: [.apt(["libgcrypt20-dev"])]),
        // The thin syscall layer: every syscall the daemon makes (sockets, processes,
        // signals, epoll, inotify, files, staging and installing binaries).
        .target(name: "OverseerSystem", dependencies: [
            "OverseerCore", "OverseerProtocol", "COverseerShims", "CSystemd", "CSodium", "CGcrypt",
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // Upgrades, daemon side: the judgements of the checks (checksum, minisign with
        // its anti-replay rule, the start check's token), pure but for minisign's file
        // hash read through OverseerSystem. Staging, watching and installing are syscalls:
        // OverseerSystem. Network fetches run in overseerd-fetch.
        .target(name: "OverseerFetch", dependencies: [
            "OverseerCore", "OverseerProtocol", "OverseerSystem", "CSodium",
        ]),
        // The supervisor: one event loop that owns all state and carries out what the
        // pure machines decide.
        .target(name: "OverseerDaemon", dependencies: [
            "OverseerCore", "OverseerProtocol", "OverseerSystem", "OverseerFetch",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        .executableTarget(name: "overseerd", dependencies: [
            "OverseerDaemon", "OverseerCore", "OverseerProtocol", "OverseerSystem",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], linkerSettings: [
            // Release builds link the Swift runtime (libswiftCore, Concurrency, Foundation-
            // Essentials, dispatch, ...) into the binary, as packaging/build-deb always did:
            // one process on every host; fewer libraries to map and relocate at each start.
            // Debug builds (and the test bundle, which links this module) stay dynamic.
            .unsafeFlags(["-static-stdlib"], .when(platforms: [.linux], configuration: .release)),
            // The static FoundationEssentials (argument-parser's) needs its two helper archives
            // named; the shared one has them inside.
            .linkedLibrary("_FoundationCShims", .when(platforms: [.linux], configuration: .release)),
            .linkedLibrary("_FoundationCollections", .when(platforms: [.linux], configuration: .release)),
        ]),
        // overseerd-fetch: the network fetcher, a separate short-lived process, so that the
        // daemon never links libcurl (about 30 shared libraries, ~10 MB of RSS) nor parses
        // TLS in the process that holds the listening sockets.
        // - libcurl (system library, Debian libcurl4-openssl-dev): HTTP(S), redirects, proxies,
        //   timeouts, AWS SigV4; the HTTP stack every Linux host already trusts.
        // - zlib (system library, Debian zlib1g-dev): inflating `.gz` downloads while streaming.
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .target(name: "COverseerFetchShims", dependencies: ["CCurl"]),
        .executableTarget(name: "overseerd-fetch", dependencies: [
            "OverseerProtocol", "COverseerFetchShims", "CCurl", "CZlib", "CSodium",
        ]),

        // The library a Swift child links: Glibc only.
        .target(name: "OverseerChild", dependencies: ["OverseerProtocol"]),
        // A child program for the tests: reports what it was given, serves HTTP, misbehaves on request.
        .executableTarget(name: "OverseerTestChild", dependencies: ["OverseerChild"]),
        // Learns of its stop only through OverseerChild.stopRequests; run by ChildLibraryTests.
        .executableTarget(name: "OverseerStopProbe", dependencies: ["OverseerChild"]),
        // The SwiftNIO adapter a child links: a server on an inherited listener, drained on SIGTERM.
        .target(name: "OverseerChildNIO", dependencies: [
            "OverseerChild",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // examples/swift-nio-server: an HTTP server on OverseerChildNIO, run by the integration tests.
        .executableTarget(name: "OverseerExampleNIOServer", dependencies: [
            "OverseerChildNIO",
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "examples/swift-nio-server"),

        // Helpers the test targets share: the one process harness (RunningProcess, on
        // OverseerSystem's spawn shim) and the small commands run through it.
        .target(name: "OverseerTestSupport", dependencies: ["OverseerCore", "OverseerSystem"],
                path: "Tests/OverseerTestSupport"),
        .testTarget(name: "OverseerProtocolTests", dependencies: ["OverseerProtocol"]),
        .testTarget(name: "OverseerCoreTests", dependencies: ["OverseerCore", "OverseerProtocol"]),
        .testTarget(name: "OverseerSystemTests", dependencies: [
            "OverseerSystem", "OverseerCore", "OverseerProtocol", "OverseerChild", "OverseerTestSupport",
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // The daemon's glue through its narrow interfaces: the real event loop, stand-ins for helpers and the daemon.
        .testTarget(name: "OverseerDaemonTests", dependencies: [
            "OverseerDaemon", "OverseerCore", "OverseerSystem", "OverseerTestSupport",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        .testTarget(name: "OverseerFetchTests", dependencies: ["OverseerFetch", "OverseerCore", "OverseerTestSupport"]),
        .testTarget(name: "OverseerIntegrationTests", dependencies: [
            "OverseerSystem", "OverseerCore", "COverseerShims", "overseerd", "OverseerTestChild", "overseerd-fetch",
            "OverseerExampleNIOServer", "OverseerStopProbe", "OverseerTestSupport",
        ]),
        .testTarget(name: "OverseerChildTests", dependencies: ["OverseerChild", "OverseerProtocol", "OverseerTestSupport"]),
        .testTarget(name: "OverseerChildNIOTests", dependencies: [
            "OverseerChildNIO", "OverseerChild", "OverseerTestSupport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "OverseerFetchToolTests", dependencies: [
            "OverseerProtocol", "OverseerCore", "OverseerTestSupport", "overseerd-fetch",
        ]),
    ]
)

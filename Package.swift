// swift-tools-version:6.0
import PackageDescription

// Layers, one direction of knowledge:
//   ISCSIFabric (wire) ──▶ SCSIEngine (SPC/SBC) ──▶ Backstores (bytes)
// The daemon wires them together; nothing below knows about anything above it.
let package = Package(
    name: "SwiftTarget",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "swift-targetd", targets: ["SwiftTargetDaemon"]),
        .executable(name: "swift-targetctl", targets: ["SwiftTargetCtl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    ],
    targets: [
        // Linux-only syscalls Swift cannot call directly (ioctl is variadic).
        .target(name: "CLinuxIO", path: "CModules/CLinuxIO"),
        // Ceph's librados/librbd, loaded at run time (dlopen): no build- or run-time
        // dependency on Ceph unless an rbd LUN is opened.
        .target(name: "CRBD", path: "CModules/CRBD", exclude: ["test"], linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "Backstores", dependencies: ["CLinuxIO", "CRBD"]),
        // TCMU ring (mmap of /dev/uioN, mailbox barriers) and the TCM-USER netlink family via libnl.
        .target(
            name: "CTCMU",
            path: "CModules/CTCMU",
            cSettings: [.unsafeFlags(["-I/usr/include/libnl3"])],
            linkerSettings: [.linkedLibrary("nl-genl-3"), .linkedLibrary("nl-3")]
        ),
        .target(
            name: "TCMU",
            dependencies: [
                "CTCMU", "SCSIEngine", "Backstores",
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"]
        ),
        // The configuration model shared by the daemon, the CLI, the API and the web console.
        .target(name: "TargetConfig", dependencies: ["Backstores"]),
        // The interface the admin faces (API, CLI, web) share with the daemon's runtime.
        .target(name: "AdminCore", dependencies: ["TargetConfig"]),
        // Runs the configuration: catalog, portals, live apply, sessions, statistics.
        // The LIO-backed runtime: the configuration as LIO objects, LUNs served by the TCMU handler.
        .target(
            name: "LIORuntime",
            dependencies: [
                "AdminCore", "TargetConfig", "TCMU", "SCSIEngine", "Backstores",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TargetRuntime",
            dependencies: [
                "AdminCore", "TargetConfig", "ISCSIFabric", "SCSIEngine", "Backstores",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Local JSON API over a Unix socket (server side) and its client for swift-targetctl.
        .target(
            name: "AdminAPI",
            dependencies: [
                "AdminCore", "TargetConfig",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Web console and Prometheus /metrics.
        .target(
            name: "AdminWeb",
            dependencies: [
                "AdminCore", "TargetConfig",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "SwiftTargetCtl",
            dependencies: [
                "AdminAPI", "AdminCore", "TargetConfig",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "SCSIEngine", dependencies: ["Backstores"]),
        // CRC32C with the CPU's instructions (SSE4.2, ARMv8 CRC), chosen at run time.
        .target(name: "CCRC32C", path: "CModules/CCRC32C"),
        .target(
            name: "ISCSIFabric",
            dependencies: [
                "SCSIEngine", "CCRC32C",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "SwiftTargetDaemon",
            dependencies: [
                "ISCSIFabric", "SCSIEngine", "Backstores", "TCMU", "TargetConfig", "TargetRuntime", "LIORuntime", "AdminAPI", "AdminWeb", "CLinuxIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "BackstoresTests", dependencies: ["Backstores"]),
        .testTarget(name: "TCMUTests", dependencies: ["TCMU", "CTCMU", "SCSIEngine", "Backstores"], exclude: ["Probe"]),
        // Runs TCMUHandler against a real kernel (scripts/tcmu-vm-test.sh); not shipped.
        .executableTarget(
            name: "swift-tcmu-probe",
            dependencies: ["TCMU", .product(name: "Logging", package: "swift-log")],
            path: "Tests/TCMUTests/Probe"
        ),
        // libFuzzer targets over the parsers and state machines that see hostile input
        // (scripts/fuzz.sh); built without -DFUZZING it replays Tests/Fuzz/Corpus plus mutations.
        .executableTarget(
            name: "swift-target-fuzz",
            dependencies: [
                "ISCSIFabric", "SCSIEngine", "Backstores", "TCMU", "CTCMU", "TargetConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Fuzz",
            exclude: ["Corpus", "Dictionaries", "README.md"]
        ),
        // Micro-benchmarks for scripts/benchmark.sh (crc32c), built in release mode.
        .executableTarget(name: "swift-target-bench", dependencies: ["ISCSIFabric"], path: "Tests/Bench"),
        .testTarget(name: "TargetConfigTests", dependencies: ["TargetConfig"]),
        .testTarget(name: "LIORuntimeTests", dependencies: ["LIORuntime", "TCMU", "TargetConfig", "AdminCore"]),
        .testTarget(
            name: "TargetRuntimeTests",
            dependencies: ["ISCSITestSupport", "TargetRuntime", "AdminAPI", "AdminCore", "TargetConfig", "ISCSIFabric", "SCSIEngine", "Backstores"]
        ),
        .testTarget(
            name: "AdminWebTests",
            dependencies: [
                "AdminWeb", "AdminCore", "TargetConfig",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(name: "SCSIEngineTests", dependencies: ["SCSIEngine", "Backstores", "ISCSIFabric"]),
        // A small independent iSCSI initiator over a blocking socket, for end-to-end tests.
        .target(name: "ISCSITestSupport", path: "Tests/ISCSITestSupport"),
        .testTarget(
            name: "ISCSIFabricTests",
            dependencies: [
                "ISCSITestSupport",
                "ISCSIFabric", "SCSIEngine", "Backstores",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

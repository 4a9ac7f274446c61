// swift-tools-version: 6.0
// Sluice: an egress firewall gateway. Targets follow ../shared/ARCHITECTURE.md: pure logic
// (SluicePolicy, SluicePacket) under the system-facing layers, one executable on top.
import PackageDescription

let package = Package(
    name: "Sluice",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sluice", targets: ["sluice"]),
        .executable(name: "classify-bench", targets: ["classify-bench"]),
        .library(name: "SluicePolicy", targets: ["SluicePolicy"]),
        .library(name: "SluicePacket", targets: ["SluicePacket"]),
        .library(name: "SluiceDataplane", targets: ["SluiceDataplane"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
    ],
    targets: [
        // Policy schema, validation, reference evaluator and the compiler to flat tables.
        // Standard library and Foundation only, so it builds and tests on any machine.
        .target(name: "SluicePolicy"),
        // Seeded generators of policies and packets for the differential test and the benchmarks.
        .target(name: "SluicePolicyGen", dependencies: ["SluicePolicy"]),
        // Header parsing/building and checksums over raw buffers, for the hot path. No dependencies at all.
        .target(name: "SluicePacket"),
        // libxdp/libbpf for Swift, a thin C shim (`sluice_*`) and the map layouts shared with bpf/.
        .target(
            name: "CSluiceXDP",
            linkerSettings: [
                .linkedLibrary("xdp"), .linkedLibrary("bpf"), .linkedLibrary("elf"), .linkedLibrary("z"),
            ]
        ),
        // XDP program loading and attach, UMEM and AF_XDP rings, pinned per-queue workers.
        .target(name: "SluiceDataplane", dependencies: ["SluicePolicy", "SluicePacket", "CSluiceXDP"]),
        .executableTarget(
            name: "sluice",
            dependencies: [
                "SluicePolicy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Benchmarks live in bench/ and never run in the test suite (docs/benchmarks.md).
        .executableTarget(name: "classify-bench", dependencies: ["SluicePolicy", "SluicePolicyGen"],
                          path: "bench/classify"),
        .testTarget(name: "SluicePolicyTests", dependencies: ["SluicePolicy", "SluicePolicyGen"]),
        .testTarget(name: "SluicePacketTests", dependencies: ["SluicePacket"]),
        .testTarget(name: "SluiceDataplaneTests", dependencies: ["SluiceDataplane", "SluicePacket"]),
        // DNS and TLS wire-format parsing and building, pure Swift with no dependencies (not even
        // Foundation), so the DNS proxy and the dataplane can both use it; may later merge into SluicePacket.
        .target(name: "SluiceWire"),
        .testTarget(name: "SluiceWireTests", dependencies: ["SluiceWire"], resources: [.copy("Fixtures")]),
    ]
)

// swift-tools-version: 6.0
// Sluice: an egress firewall gateway. Targets follow ../shared/ARCHITECTURE.md: pure logic
// (SluicePolicy, SluicePacket) under the system-facing layers, one executable on top.
import PackageDescription

let package = Package(
    name: "Sluice",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sluice", targets: ["sluice"]),
        .library(name: "SluicePolicy", targets: ["SluicePolicy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
    ],
    targets: [
        // Policy schema, validation, reference evaluator and the compiler to flat tables.
        // Standard library and Foundation only, so it builds and tests on any machine.
        .target(name: "SluicePolicy"),
        .executableTarget(
            name: "sluice",
            dependencies: [
                "SluicePolicy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(name: "SluicePolicyTests", dependencies: ["SluicePolicy"]),
        // DNS and TLS wire-format parsing and building, pure Swift with no dependencies (not even
        // Foundation), so the DNS proxy and the dataplane can both use it; may later merge into SluicePacket.
        .target(name: "SluiceWire"),
        .testTarget(name: "SluiceWireTests", dependencies: ["SluiceWire"], resources: [.copy("Fixtures")]),
    ]
)

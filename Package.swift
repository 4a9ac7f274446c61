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
        .executable(name: "forward-bench", targets: ["forward-bench"]),
        .executable(name: "dns-bench", targets: ["dns-bench"]),
        .executable(name: "dns-state-bench", targets: ["dns-state-bench"]),
        .executable(name: "tls-bench", targets: ["tls-bench"]),
        .executable(name: "nft-rules", targets: ["nft-rules"]),
        .library(name: "SluicePolicy", targets: ["SluicePolicy"]),
        .library(name: "SluicePacket", targets: ["SluicePacket"]),
        .library(name: "SluiceDataplane", targets: ["SluiceDataplane"]),
        .library(name: "SluiceStore", targets: ["SluiceStore"]),
        .library(name: "SluiceAPI", targets: ["SluiceAPI"]),
        .library(name: "SluiceDNS", targets: ["SluiceDNS"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
        // Management plane: store, API server, TLS certificate generation, metrics.
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        // The CLI client of the management API (`sluice policy apply`, `sluice stats`, ...).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // Dataplane: acquire/release atomics in raw memory (policy pointer, epochs, counters, SPSC rings).
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
    ],
    targets: [
        // Policy schema, validation, reference evaluator and the compiler to flat tables.
        // Standard library and Foundation only, so it builds and tests on any machine.
        .target(name: "SluicePolicy"),
        // Seeded generators of policies and packets for the differential test and the benchmarks.
        .target(name: "SluicePolicyGen", dependencies: ["SluicePolicy"]),
        // The one way to run another program (argv, captured output, exit status, timeout, background
        // handle); Foundation only, so the dataplane, the lab, the tests and the benchmarks can all use it.
        .target(name: "SluiceProcess"),
        // Header parsing/building and checksums over raw buffers, for the hot path. No dependencies at all.
        .target(name: "SluicePacket"),
        // Linux calls Glibc does not import (_GNU_SOURCE): recvmmsg/sendmmsg, thread affinity, names, nice.
        .target(name: "CSluiceSystem"),
        // libxdp/libbpf for Swift, a thin C shim (`sluice_*`) and the map layouts shared with bpf/.
        .target(
            name: "CSluiceXDP",
            linkerSettings: [
                .linkedLibrary("xdp"), .linkedLibrary("bpf"), .linkedLibrary("elf"), .linkedLibrary("z"),
            ]
        ),
        // XDP program loading and attach, UMEM and AF_XDP rings, pinned per-queue workers.
        .target(
            name: "SluiceDataplane",
            dependencies: [
                "SluicePolicy", "SluicePacket", "CSluiceXDP", "CSluiceSystem",
                .product(name: "Atomics", package: "swift-atomics"), "SluiceProcess",
                // TLS metadata matching: handshake parsing, X.509 of the server's certificate.
                "SluiceWire", .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The kernel's side of AF_XDP rings in memory, for the worker-loop test and forward-bench.
        .target(name: "SluiceDataplaneTesting", dependencies: ["SluiceDataplane", "CSluiceXDP",
                                                               .product(name: "Atomics", package: "swift-atomics")]),
        // Durable state of the management plane: policies and their versions, settings, service
        // accounts and token hashes, the admin log and persisted audit findings (SQLite via GRDB).
        .target(
            name: "SluiceStore",
            dependencies: [
                "SluicePolicy",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The REST API (Hummingbird 2): routes, bearer auth, error model, TLS bootstrap.
        .target(
            name: "SluiceAPI",
            dependencies: [
                "SluicePolicy",
                "SluiceStore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ]
        ),
        // The lab: network namespaces, veth pairs and upstream services for trying Sluice and for the
        // integration tests. Foundation only; the topology and its command plan are pure values.
        .target(name: "SluiceLab", dependencies: ["SluiceProcess"]),
        // The DNS proxy: DNS policy, upstream forwarding, the answer cache and the learned address set the
        // dataplane reads lock-free (docs/dns.md). UDP on its own threads (recvmmsg/sendmmsg), TCP on SwiftNIO.
        .target(
            name: "SluiceDNS",
            dependencies: [
                "SluicePolicy",
                "SluiceWire",
                "CSluiceSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "sluice",
            dependencies: [
                "SluicePolicy",
                "SluiceLab",
                "SluiceProcess",
                "SluiceStore",
                "SluiceAPI",
                "SluiceDataplane",
                "SluiceDNS",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Benchmarks live in bench/ and never run in the test suite (docs/benchmarks.md).
        .executableTarget(name: "classify-bench", dependencies: ["SluicePolicy", "SluicePolicyGen"],
                          path: "bench/classify"),
        // Worker cost per packet (processor alone and the worker loop over in-memory rings) with
        // cycle and allocation counts; AllocCounter interposes malloc in that executable only.
        .target(name: "AllocCounter", path: "bench/alloc-counter"),
        .executableTarget(
            name: "forward-bench",
            dependencies: [
                "SluiceDataplane", "SluiceDataplaneTesting", "SluicePolicy", "SluicePolicyGen", "SluicePacket",
                "AllocCounter",
            ],
            path: "bench/forward"
        ),
        // Cost of a pending-TLS decision and TLS connections per second against plain TCP (docs/benchmarks.md).
        .executableTarget(
            name: "tls-bench", dependencies: ["SluiceDataplane", "SluicePolicy", "SluicePacket"], path: "bench/tls"),
        // The benchmark harness's rule sets: generated policy, naive and best nftables encodings.
        .executableTarget(name: "nft-rules", dependencies: ["SluicePolicy", "SluicePolicyGen"], path: "bench/nft-rules"),
        // DNS proxy throughput and latency against the upstream alone, with dnsperf and nsd (docs/dns.md).
        .executableTarget(
            name: "dns-bench",
            dependencies: [
                "SluiceDNS",
                "SluiceLab",
                "SluiceProcess",
                "DNSBenchSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "bench/dns",
            exclude: ["setup.sh"]
        ),
        // The DNS proxy's own work per query (parse, policy, cache, learning) in process, without sockets.
        .executableTarget(
            name: "dns-state-bench",
            dependencies: ["SluiceDNS", "SluicePolicy", "SluiceWire", "DNSBenchSupport",
                           .product(name: "NIOCore", package: "swift-nio")],
            path: "bench/dns-state"
        ),
        // What the two DNS benchmarks share: the policy their queries are judged by.
        .target(name: "DNSBenchSupport", dependencies: ["SluiceDNS", "SluicePolicy"], path: "bench/dns-support"),
        .testTarget(name: "SluicePolicyTests", dependencies: ["SluicePolicy", "SluicePolicyGen"]),
        .testTarget(name: "SluiceProcessTests", dependencies: ["SluiceProcess"]),
        // The `sluice` binary as operators run it (built first with `swift build --build-tests`).
        .testTarget(name: "SluiceCommandTests", dependencies: ["sluice", "SluiceProcess"]),
        .testTarget(name: "SluicePacketTests", dependencies: ["SluicePacket", "SluicePolicyGen"]),
        // Unit tests of the lab's plan (any machine) and, as root, `sluice lab up/down` end to end.
        .testTarget(name: "SluiceLabTests", dependencies: ["SluiceLab", "SluicePolicy", "SluiceProcess", "sluice"]),
        .testTarget(
            name: "SluiceDataplaneTests",
            dependencies: [
                "SluiceDataplane", "SluiceDataplaneTesting", "SluicePacket", "SluiceProcess", "SluicePolicyGen",
                // TLS-pending tests build certificates in memory.
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // DNS and TLS wire-format parsing and building, pure Swift with no dependencies (not even
        // Foundation), so the DNS proxy and the dataplane can both use it; may later merge into SluicePacket.
        .target(name: "SluiceWire"),
        .testTarget(name: "SluiceWireTests", dependencies: ["SluiceWire", "SluicePolicyGen"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SluiceStoreTests", dependencies: ["SluiceStore", "SluiceProcess"]),
        .testTarget(
            name: "SluiceDNSTests",
            dependencies: [
                "SluiceDNS",
                "SluiceLab",
                "SluicePolicy",
                "SluicePolicyGen",
                "SluiceProcess",
                "SluiceWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The child process of the store's crash test: a write storm that is killed with SIGKILL.
        .executableTarget(name: "StoreStressHelper", dependencies: ["SluiceStore"], path: "Tests/StoreStressHelper"),
        .testTarget(
            name: "SluiceAPITests",
            dependencies: [
                "SluiceAPI",
                "SluicePolicy",
                "SluiceStore",
                "SluiceProcess",
                "SluicePolicyGen",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
    ]
)

// Root-only end-to-end test of the steering program and the receive loop on a real kernel:
//
//   netns "peer": peerIf 10.213.x.2 ──veth──► hostIf 10.213.x.1 [XDP sluice_steer] ──XSKMAP[0]──► AFXDPSocket
//
// The peer routes 198.51.100.0/24 via the host, so its UDP packets to 198.51.100.7 are transit
// traffic: they must arrive on the AF_XDP socket, while ARP and a ping to the host's own
// address are still answered by the kernel. Without a socket on the queue, transit traffic is
// dropped and counted (fail closed). Everything it creates is removed by a defer, pass or fail.
// Skipped, with the reason printed, when not root or when tools are missing.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SluicePacket
import SluiceProcess
import SluicePolicy
import Testing
@testable import SluiceDataplane

enum IntegrationEnvironment {
    static let toolPath = "/usr/sbin:/usr/bin:/sbin:/bin"

    /// Why the integration tests cannot run here, or nil when they can.
    static let missingReason: String? = {
        if getuid() != 0 { return "not running as root (needs CAP_NET_ADMIN, CAP_BPF, CAP_SYS_ADMIN)" }
        for tool in ["ip", "bash", "ping"] where !toolPath.split(separator: ":").contains(where: {
            access("\($0)/\(tool)", X_OK) == 0
        }) {
            return "\(tool) not installed (run scripts/setup.sh)"
        }
        if XDPProgram.locateObject() == nil {
            // Build it the way a developer would; a failure here is a real failure, reported below.
            _ = try? Subprocess.check(["bash", repositoryRoot + "/bpf/build.sh"])
            if XDPProgram.locateObject() == nil { return "BPF object missing and bpf/build.sh failed (clang installed?)" }
        }
        return nil
    }()

    static var canRun: Bool {
        if let missingReason {
            // swift-testing prints the trait's comment; this line says which requirement failed.
            FileHandle.standardError.write("SKIPPING AF_XDP integration tests: \(missingReason)\n".data(using: .utf8)!)
            return false
        }
        return true
    }

    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }
}

@Suite(.serialized) struct AFXDPIntegrationTests {
    @Test(.enabled(if: IntegrationEnvironment.canRun, "needs root, iproute2, ping and clang/bpf/build.sh; see stderr"))
    func transitTrafficReachesTheSocketWhileARPAndLocalTrafficReachTheKernel() throws {
        let tag = getpid() % 100_000
        let namespace = "sluice-test-\(tag)"
        let hostInterface = "slt\(tag)h"
        let peerInterface = "slt\(tag)p"
        let subnet = "10.213.\(tag % 250)"
        let veth = VethPeer(
            namespace: namespace, host: hostInterface, peer: peerInterface, subnet: subnet, prefix6: "fd00:213:")
        defer {
            veth.remove()
            _ = try? Subprocess.check(["ip", "route", "del", "blackhole", "198.51.100.0/24"])
            _ = try? Subprocess.check(["ip", "-6", "route", "del", "blackhole", "2001:db8:7::/64"])
        }
        // The test's transit destinations are blackholed here, so that nothing the test sends can be
        // routed off this machine even while no XDP program is attached.
        try Subprocess.check(["ip", "route", "replace", "blackhole", "198.51.100.0/24"])
        try Subprocess.check(["ip", "-6", "route", "replace", "blackhole", "2001:db8:7::/64"])
        try veth.create()
        try Subprocess.check(["ip", "-n", namespace, "route", "add", "198.51.100.0/24", "via", "\(subnet).1"])
        try Subprocess.check(["ip", "-n", namespace, "route", "add", "2001:db8:7::/64", "via", "fd00:213::1"])

        let program = try XDPProgram()
        var log: [String] = []
        let attachment = try program.attach(to: hostInterface) { log.append($0) }
        defer { attachment.detach() }
        #expect(attachment.mode == .native, "veth supports native XDP on this kernel; log: \(log)")
        try program.setGatewayAddresses([IPAddress("\(subnet).1")!, IPAddress("fd00:213::1")!])

        let umem = try Umem(frameCount: 1024, frameSize: 4096, ringSize: 512)
        let socket = try AFXDPSocket(interface: hostInterface, queue: 0, umem: umem, program: program, ringSize: 512)
        var loop = ReceiveLoop(socket: socket, fillTarget: 512)

        // The host's own address: ARP and ICMP go to the kernel, which answers.
        try Subprocess.check(["ip", "netns", "exec", namespace, "ping", "-c", "1", "-W", "2", "\(subnet).1"])
        let neighbour = try Subprocess.check(["ip", "-n", namespace, "neigh", "show", "\(subnet).1"])
        #expect(neighbour.contains("lladdr"), "ARP for the gateway was answered by the kernel: \(neighbour)")
        // The same over IPv6: neighbour discovery and ICMPv6 to the host's own address.
        try Subprocess.check(["ip", "netns", "exec", namespace, "ping", "-6", "-c", "1", "-W", "2", "fd00:213::1"])

        // Transit: five UDP datagrams through the host.
        let sender = try Subprocess.start(["ip", "netns", "exec", namespace, "bash", "-c",
            "for i in 1 2 3 4 5; do echo sluice-$i > /dev/udp/198.51.100.7/9999; "
                + "echo sluice6-$i > /dev/udp/2001:db8:7::7/9999; sleep 0.05; done"])
        let transitV6Destination: UInt128 = 0x2001_0db8_0007_0000_0000_0000_0000_0007
        var transit = 0
        var transitV6 = 0
        var other = 0
        let deadline = Date().addingTimeInterval(5)
        while (transit < 5 || transitV6 < 5) && Date() < deadline {
            _ = loop.runBatch(idleTimeoutMilliseconds: 20) { frame in
                guard let packet = try? PacketParser.parse(frame), packet.tuple.protocolNumber == IPProtocolNumber.udp,
                      packet.tuple.destinationPort == 9999 else {
                    other += 1
                    return
                }
                if packet.tuple.family == .v4 && packet.tuple.destinationV4 == 0xC633_6407 {
                    transit += 1
                } else if packet.tuple.family == .v6 && packet.tuple.destination == transitV6Destination {
                    transitV6 += 1
                } else {
                    other += 1
                }
            }
        }
        sender.wait()
        #expect(transit == 5, "IPv4 UDP datagrams seen on the AF_XDP socket (other frames: \(other))")
        #expect(transitV6 == 5, "IPv6 UDP datagrams seen on the AF_XDP socket (other frames: \(other))")
        #expect(loop.framesWithKernel + loop.allocator.available == umem.frameCount)

        var counters = try program.counters()
        #expect(counters[.redirectedV4] >= 5)
        #expect(counters[.redirectedV6] >= 5)
        #expect(counters[.passedNeighborDiscovery] >= 1)
        #expect(counters[.passedARP] >= 1)
        #expect(counters[.passedLocal] >= 1, "the ping to the gateway's own address")
        #expect(try socket.statistics().rxInvalidDescriptors == 0)

        // Fail closed: with no socket on the queue, transit packets are dropped, not passed.
        program.unregisterSocket(queue: 0)
        try Subprocess.check(["ip", "netns", "exec", namespace, "bash", "-c", "echo late > /dev/udp/198.51.100.7/9999"])
        counters = try program.counters()
        #expect(counters[.droppedNoSocket] >= 1)

        attachment.detach()
        let link = try Subprocess.check(["ip", "link", "show", hostInterface])
        #expect(!link.contains("xdp"), "detached: \(link)")
    }

    @Test(.enabled(if: IntegrationEnvironment.canRun, "needs root, iproute2, ping and clang/bpf/build.sh; see stderr"))
    func staleProgramLeftByANonLinkAttachIsReplaced() throws {
        let tag = getpid() % 100_000
        let interface = "slt\(tag)s"
        let peer = "slt\(tag)t"
        defer { _ = try? Subprocess.check(["ip", "link", "del", interface]) }
        try Subprocess.check(["ip", "link", "add", interface, "type", "veth", "peer", "name", peer])
        let program = try XDPProgram()
        // What a crash of an old, non-link attach would leave behind.
        try Subprocess.check(["ip", "link", "set", "dev", interface, "xdpdrv", "obj", program.objectPath,
                              "sec", "xdp"])
        var log: [String] = []
        let attachment = try program.attach(to: interface) { log.append($0) }
        #expect(log.contains { $0.contains("replaced stale") }, "log: \(log)")
        attachment.detach()
        #expect(!(try Subprocess.check(["ip", "link", "show", interface])).contains("xdp"))
    }
}

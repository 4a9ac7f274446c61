// The forwarding snapshot against the kernel: routes and neighbours read over rtnetlink
// (Sources/CSluiceXDP/netlink.c), longest-prefix next hops, and neighbour resolution on demand
// (RTM_NEWNEIGH + NTF_USE) answered by a peer in a throwaway namespace. Root only (it creates
// a veth pair); the lookups over hand-made tables run anywhere.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SluicePacket
import SluiceProcess
import Testing
@testable import SluiceDataplane

@Suite(.serialized) struct ForwardingSnapshotTests {
    @Test func longestPrefixWinsAndForeignEgressIsNoRoute() {
        let table = Topology.snapshot()
        #expect(table.nextHop(family: .v4, destination: ipv4("10.0.0.9"), interfaceIndex: 1) == ipv4("10.0.0.9"))
        #expect(table.nextHop(family: .v4, destination: ipv4("8.8.8.8"), interfaceIndex: 2) == ipv4("192.0.2.254"))
        #expect(table.nextHop(family: .v4, destination: ipv4("8.8.8.8"), interfaceIndex: 1) == nil,
                "the best route leaves by the other interface")
        #expect(table.nextHop(family: .v6, destination: ipv6("2001:db8::1"), interfaceIndex: 2) == ipv6("fd01::fe"))
        #expect(table.neighbourMAC(interfaceIndex: 2, family: .v4, address: ipv4("192.0.2.254")) == Topology.routerMAC)
        #expect(table.neighbourMAC(interfaceIndex: 2, family: .v4, address: ipv4("192.0.2.253")) == nil)
    }

    @Test(.enabled(if: IntegrationEnvironment.canRun, "needs root and iproute2; see stderr"))
    func readsTheKernelTablesAndResolvesNeighboursOnDemand() throws {
        let tag = getpid() % 100_000
        let namespace = "sluice-fwd-\(tag)"
        let host = "slf\(tag)h"
        let peer = "slf\(tag)p"
        let subnet = "10.214.\(tag % 250)"
        let veth = VethPeer(namespace: namespace, host: host, peer: peer, subnet: subnet, prefix6: "fd00:214:")
        defer { veth.remove() }
        try veth.create()
        try Subprocess.check(["ip", "route", "add", "198.18.\(tag % 250).0/24", "via", "\(subnet).2", "dev", host])
        let peerMAC = try Subprocess.check(["ip", "-n", namespace, "-br", "link", "show", peer])
            .split(separator: " ", omittingEmptySubsequences: true)[2]

        var snapshot = try ForwardingSnapshot.read(inside: host, outside: "lo")
        let index = snapshot.inside.index
        #expect(index == Int32(if_nametoindex(host)))
        #expect(snapshot.inside.ipv4 == UInt32(ipv4("\(subnet).1")) && snapshot.inside.ipv6 == ipv6("fd00:214::1"))
        #expect(snapshot.inside.mac != MACAddress(0))
        let nextHop = ipv4("\(subnet).2")
        let remote = ipv4("198.18.\(tag % 250).7")
        #expect(snapshot.nextHop(family: .v4, destination: remote, interfaceIndex: index) == nextHop)
        #expect(snapshot.nextHop(family: .v6, destination: ipv6("fd00:214::9"), interfaceIndex: index)
            == ipv6("fd00:214::9"), "on-link IPv6 destination")
        #expect(snapshot.neighbourMAC(interfaceIndex: index, family: .v4, address: nextHop) == nil, "not resolved yet")

        try ForwardingSnapshot.resolveNeighbour(interfaceIndex: index, family: .v4, address: nextHop)
        var resolved: MACAddress?
        let deadline = Date().addingTimeInterval(3)
        while resolved == nil && Date() < deadline {
            usleep(50_000)
            snapshot = try ForwardingSnapshot.read(inside: host, outside: "lo")
            resolved = snapshot.neighbourMAC(interfaceIndex: index, family: .v4, address: nextHop)
        }
        #expect(resolved?.description.lowercased() == peerMAC.lowercased(), "resolved to the peer's MAC \(peerMAC)")
    }
}

// The Swift side of the layouts in bpf/sluice_maps.h: counter indexes agree with the C enum,
// and gateway-address and offloaded-flow keys are encoded as the XDP program compares them.
// Runs without root.

import CSluiceXDP
import SluicePacket
import SluicePolicy
import Testing
@testable import SluiceDataplane

@Suite struct XDPMapLayoutTests {
    @Test func counterIndexesMatchTheCHeader() {
        let expected: [(XDPCounter, sluice_counter_index)] = [
            (.redirectedV4, SLUICE_CTR_REDIRECT_V4), (.redirectedV6, SLUICE_CTR_REDIRECT_V6),
            (.passedARP, SLUICE_CTR_PASS_ARP), (.passedNeighborDiscovery, SLUICE_CTR_PASS_ND),
            (.passedLocal, SLUICE_CTR_PASS_LOCAL), (.passedLinkScope, SLUICE_CTR_PASS_LINK_SCOPE),
            (.passedNonIP, SLUICE_CTR_PASS_NON_IP), (.droppedMalformed, SLUICE_CTR_DROP_MALFORMED),
            (.droppedNoSocket, SLUICE_CTR_DROP_NO_SOCKET), (.offloadForwarded, SLUICE_CTR_OFFLOAD_FORWARD),
            (.offloadDropped, SLUICE_CTR_OFFLOAD_DROP), (.offloadStale, SLUICE_CTR_OFFLOAD_STALE),
            (.offloadPunted, SLUICE_CTR_OFFLOAD_PUNT),
        ]
        #expect(expected.count == Int(SLUICE_CTR_MAX.rawValue))
        for (counter, index) in expected {
            #expect(counter.mapIndex == index.rawValue, "\(counter)")
        }
        #expect(MemoryLayout<sluice_counter>.size == 16)
    }

    @Test func gatewayAddressKeysAreNetworkOrderAndZeroPadded() {
        #expect(MemoryLayout<sluice_addr_key>.size == 20)
        var v4 = XDPProgram.key(for: IPAddress("192.0.2.10")!)
        let v4Bytes = withUnsafeBytes(of: &v4) { Array($0) }
        #expect(v4Bytes == [4, 0, 0, 0, 192, 0, 2, 10] + Array(repeating: 0, count: 12))
        var v6 = XDPProgram.key(for: IPAddress("2001:db8::1")!)
        let v6Bytes = withUnsafeBytes(of: &v6) { Array($0) }
        #expect(v6Bytes == [6, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1])
    }

    @Test func offloadedFlowKeysAreNetworkOrderAndRoundTrip() {
        #expect(MemoryLayout<sluice_flow_key>.size == 40)
        #expect(MemoryLayout<sluice_flow_value>.size == 56)
        #expect(MemoryLayout<sluice_flow_value>.offset(of: \.packets) == 24)
        #expect(MemoryLayout<sluice_flow_value>.offset(of: \.last_seen_ns) == 48)
        let v4 = FiveTuple(family: .v4, protocolNumber: 17, source: 0xC000_020A, destination: 0xC633_6401,
                           sourcePort: 40000, destinationPort: 53)
        var key = FlowOffload.key(v4)
        let bytes = withUnsafeBytes(of: &key) { Array($0) }
        #expect(bytes[0..<8] == [4, 17, 0x9C, 0x40, 0, 53, 0, 0])
        #expect(bytes[8..<12] == [192, 0, 2, 10])
        #expect(bytes[12..<24] == ArraySlice(repeating: 0, count: 12))
        #expect(bytes[24..<28] == [198, 51, 100, 1])
        #expect(FlowOffload.tuple(key) == v4)
        let v6 = FiveTuple(family: .v6, protocolNumber: 6, source: UInt128(0x2001_0db8) << 96 | 1,
                           destination: UInt128(0x2001_0db8) << 96 | 2, sourcePort: 1, destinationPort: 443)
        var key6 = FlowOffload.key(v6)
        let bytes6 = withUnsafeBytes(of: &key6) { Array($0) }
        #expect(bytes6[8..<12] == [0x20, 0x01, 0x0d, 0xb8])
        #expect(bytes6[23] == 1 && bytes6[39] == 2)
        #expect(FlowOffload.tuple(key6) == v6)
    }
}

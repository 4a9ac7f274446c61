// The Swift side of the layouts in bpf/sluice_maps.h: counter indexes agree with the C enum,
// and gateway-address keys are encoded as the XDP program compares them. Runs without root.

import CSluiceXDP
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
            (.droppedNoSocket, SLUICE_CTR_DROP_NO_SOCKET),
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
}

// Field-by-field checks of the parser against the golden frames, and its failure reasons for
// malformed headers.

import SluicePacket
import Testing

@Suite struct PacketParserTests {
    let v6Source: UInt128 = 0x2001_0db8_0000_0000_0000_0000_0000_0001
    let v6Destination: UInt128 = 0x2001_0db8_0000_0000_0000_0000_0000_0002

    @Test func ipv4UDP() throws {
        let packet = try parse(GoldenFrames.ipv4UDP)
        #expect(packet.tuple == FiveTuple(
            family: .v4, protocolNumber: 17, source: 0xC0A8_0102, destination: 0x0A00_0001,
            sourcePort: 12345, destinationPort: 53))
        #expect(packet.vlanID == nil)
        #expect(packet.etherType == EtherType.ipv4)
        #expect((packet.l3Offset, packet.l4Offset, packet.payloadOffset, packet.packetEnd) == (14, 34, 42, 46))
        #expect(packet.hopLimit == 64)
        #expect(packet.fragment == nil, "DF alone is not a fragment")
        #expect(packet.hasTransportHeader && !packet.hasIPv4Options)
        #expect(packet.icmp == nil)
    }

    @Test func vlanIPv4TCPWithOptions() throws {
        let packet = try parse(GoldenFrames.vlanIPv4TCPWithOptions)
        #expect(packet.vlanID == 100)
        #expect(packet.tuple == FiveTuple(
            family: .v4, protocolNumber: 6, source: 0x0A01_0203, destination: 0xC633_6407,
            sourcePort: 50000, destinationPort: 443))
        #expect((packet.l3Offset, packet.l4Offset, packet.payloadOffset, packet.packetEnd) == (18, 42, 62, 66))
        #expect(packet.hopLimit == 63)
        #expect(packet.tcpFlags == [.syn, .ack])
        #expect(packet.hasIPv4Options)
    }

    @Test func ipv6TCPWithExtensionHeaders() throws {
        let packet = try parse(GoldenFrames.ipv6TCPWithExtensions)
        #expect(packet.tuple == FiveTuple(
            family: .v6, protocolNumber: 6, source: v6Source, destination: v6Destination,
            sourcePort: 1234, destinationPort: 80))
        #expect((packet.l3Offset, packet.l4Offset, packet.payloadOffset, packet.packetEnd) == (14, 70, 90, 90))
        #expect(packet.tcpFlags == .syn)
        #expect(packet.fragment == nil)
    }

    @Test func ipv4EchoRequestUsesIdentifierAsPorts() throws {
        let packet = try parse(GoldenFrames.ipv4EchoRequest)
        #expect(packet.tuple.sourcePort == 0xABCD && packet.tuple.destinationPort == 0xABCD)
        #expect(packet.icmp == ICMPInfo(type: 8, code: 0, kind: .echoRequest, identifier: 0xABCD, embedded: nil))
    }

    @Test func ipv4TimeExceededCarriesTheQuotedFlow() throws {
        let packet = try parse(GoldenFrames.ipv4TimeExceeded)
        let original = try parse(GoldenFrames.ipv4UDP)
        #expect(packet.icmp?.kind == .error)
        #expect(packet.icmp?.type == 11)
        #expect(packet.tuple.sourcePort == 0 && packet.tuple.destinationPort == 0)
        #expect(packet.icmp?.embedded == EmbeddedHeader(tuple: original.tuple, l3Offset: 42, isFragment: false))
    }

    @Test func ipv6UnreachableCarriesTheQuotedFlow() throws {
        let packet = try parse(GoldenFrames.ipv6Unreachable)
        #expect(packet.tuple.protocolNumber == IPProtocolNumber.icmpv6)
        #expect(packet.icmp?.type == 1 && packet.icmp?.code == 1 && packet.icmp?.kind == .error)
        #expect(packet.icmp?.embedded?.tuple == FiveTuple(
            family: .v6, protocolNumber: 6, source: v6Source, destination: v6Destination,
            sourcePort: 1234, destinationPort: 80))
    }

    @Test func ipv4LaterFragmentHasNoTransportHeader() throws {
        let packet = try parse(GoldenFrames.ipv4LaterFragment)
        #expect(packet.fragment == FragmentInfo(offset: 1480, moreFragments: false, identification: 0x1234))
        #expect(!packet.hasTransportHeader)
        #expect(packet.tuple.sourcePort == 0 && packet.tuple.destinationPort == 0)
        #expect(packet.l4Offset == 34 && packet.payloadOffset == 34)
    }

    @Test func ipv6FirstFragmentIsFlaggedAndParsed() throws {
        let packet = try parse(GoldenFrames.ipv6FirstFragment)
        #expect(packet.fragment == FragmentInfo(offset: 0, moreFragments: true, identification: 42))
        #expect(packet.hasTransportHeader)
        #expect(packet.tuple.sourcePort == 5000 && packet.tuple.destinationPort == 5001)
        #expect(packet.l4Offset == 62)
    }

    @Test func ethernetPaddingIsNotPartOfThePacket() throws {
        let padded = GoldenFrames.ipv4EchoRequest + [UInt8](repeating: 0, count: 18)
        let packet = try parse(padded)
        #expect(packet.packetEnd == 42)
    }

    @Test func rejectsWhatItCannotRoute() {
        var arp = GoldenFrames.ipv4UDP
        arp[12] = 0x08
        arp[13] = 0x06
        #expect(failure(arp) == .unsupportedEtherType)

        var qinq = hexBytes("\(GoldenFrames.macs) 8100 0064 8100 0065 0800")
        qinq += GoldenFrames.ipv4UDP[14...]
        #expect(failure(qinq) == .stackedVLANTags)

        var wrongVersion = GoldenFrames.ipv4UDP
        wrongVersion[14] = 0x65
        #expect(failure(wrongVersion) == .ipVersionMismatch)

        var shortIHL = GoldenFrames.ipv4UDP
        shortIHL[14] = 0x44
        #expect(failure(shortIHL) == .badIPv4HeaderLength)

        var shortTotal = GoldenFrames.ipv4UDP
        shortTotal[17] = 0x10
        #expect(failure(shortTotal) == .badIPv4TotalLength)

        var badUDPLength = GoldenFrames.ipv4UDP
        badUDPLength[39] = 0x40
        #expect(failure(badUDPLength) == .badUDPLength)

        var badDataOffset = GoldenFrames.ipv6TCPWithExtensions
        badDataOffset[70 + 12] = 0x40
        #expect(failure(badDataOffset) == .badTCPDataOffset)

        // Destination options whose next header is hop-by-hop.
        var hopByHopLate = GoldenFrames.ipv6TCPWithExtensions
        hopByHopLate[20] = 60
        hopByHopLate[54] = 60
        hopByHopLate[62] = 0
        #expect(failure(hopByHopLate) == .hopByHopNotFirst)

        var wrongEmbeddedFamily = GoldenFrames.ipv4TimeExceeded
        wrongEmbeddedFamily[42] = 0x65
        #expect(failure(wrongEmbeddedFamily) == .badEmbeddedHeader)
    }

    @Test func boundsTheExtensionHeaderWalk() {
        let count = PacketParser.maxExtensionHeaders + 1
        var headers: [UInt8] = []
        for index in 0..<count {
            headers += [index == count - 1 ? 59 : 60, 0, 1, 4, 0, 0, 0, 0]
        }
        let length = String(headers.count, radix: 16)
        let prefix = hexBytes("""
            \(GoldenFrames.macs) 86dd 60000000 \(String(repeating: "0", count: 4 - length.count) + length) 3c 40
            \(GoldenFrames.v6Source) \(GoldenFrames.v6Destination)
            """)
        #expect(failure(prefix + headers) == .tooManyExtensionHeaders)
        let fewer = Array(prefix + headers[8...])
        // One header fewer is within the bound (payload length now overstates: fix it).
        var fixed = fewer
        fixed[19] = UInt8(headers.count - 8)
        #expect(failure(fixed) == nil)
    }

    @Test func reportsTruncationPerLayer() {
        let udp = GoldenFrames.ipv4UDP
        #expect(failure(Array(udp[0..<13])) == .truncatedEthernet)
        #expect(failure(Array(udp[0..<30])) == .truncatedIPv4Header)
        #expect(failure(Array(udp[0..<45])) == .truncatedIPv4Packet)
        let v6 = GoldenFrames.ipv6TCPWithExtensions
        #expect(failure(Array(v6[0..<50])) == .truncatedIPv6Header)
        #expect(failure(Array(v6[0..<89])) == .truncatedIPv6Packet)
        let vlan = GoldenFrames.vlanIPv4TCPWithOptions
        #expect(failure(Array(vlan[0..<16])) == .truncatedVLANTag)
    }
}

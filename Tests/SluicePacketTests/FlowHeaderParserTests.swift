// The flow-hit parser's contract: it accepts only plain TCP/UDP packets, and whenever it accepts
// a frame the full parser accepts it too, with the same tuple, TCP flags, L3 offset and IP
// length (the dataplane forwards on its result alone). Checked on built frames, on the golden
// frames, and on a seeded mutation fuzz of both.

import SluicePacket
import Testing

@Suite struct FlowHeaderParserTests {
    static let v4 = FiveTuple(family: .v4, protocolNumber: 6, source: 0x0A00_0002, destination: 0xC000_0201,
                              sourcePort: 40_000, destinationPort: 443)
    static let v6 = FiveTuple(family: .v6, protocolNumber: 17, source: 0xFD00 << 112 | 2,
                              destination: 0x2001_0DB8 << 96 | 1, sourcePort: 5353, destinationPort: 53)

    /// Plain packets the fast path must take: TCP and UDP, v4 and v6, untagged and tagged.
    static var plainFrames: [[UInt8]] {
        var frames: [[UInt8]] = []
        for base in [v4, v6] {
            for proto: UInt8 in [6, 17] {
                var tuple = base
                tuple.protocolNumber = proto
                for vlan: UInt16? in [nil, 42] {
                    frames.append(FrameBuilder(vlanID: vlan, tuple: tuple, tcpFlags: [.ack, .psh])
                        .bytes(payload: Array("hello".utf8)))
                }
            }
        }
        return frames
    }

    @Test func plainPacketsAreReadLikeTheFullParser() throws {
        for frame in Self.plainFrames {
            let header = try #require(flowHeader(frame))
            try expectAgreement(frame, header)
        }
    }

    @Test func everythingElseGoesTheLongWay() throws {
        // ICMP, IPv4 options, IPv6 extension headers, fragments (first and later).
        for frame in [GoldenFrames.vlanIPv4TCPWithOptions, GoldenFrames.ipv6TCPWithExtensions,
                      GoldenFrames.ipv4EchoRequest, GoldenFrames.ipv4TimeExceeded, GoldenFrames.ipv6Unreachable,
                      GoldenFrames.ipv4LaterFragment, GoldenFrames.ipv6FirstFragment] {
            #expect(flowHeader(frame) == nil)
        }
        // A hop limit that forwarding would exhaust: the full path answers it with time exceeded.
        for tuple in [Self.v4, Self.v6] {
            for hopLimit: UInt8 in [0, 1] {
                let frame = FrameBuilder(tuple: tuple, hopLimit: hopLimit).bytes(payload: [])
                #expect(flowHeader(frame) == nil)
                #expect(try parse(frame).hopLimit == hopLimit)
            }
            #expect(flowHeader(FrameBuilder(tuple: tuple, hopLimit: 2).bytes(payload: [])) != nil)
        }
        // A first fragment with MF set, though its header is complete.
        var fragment = FrameBuilder(tuple: Self.v4).bytes(payload: Array(repeating: 0, count: 16))
        fragment[14 + 6] |= 0x20
        #expect(flowHeader(fragment) == nil)
        #expect(try parse(fragment).fragment != nil)
        // Stacked VLAN tags, which the full parser refuses.
        var stacked = FrameBuilder(vlanID: 7, tuple: Self.v4).bytes(payload: [])
        stacked[16] = 0x81
        stacked[17] = 0x00
        #expect(flowHeader(stacked) == nil)
    }

    @Test func everyTruncationIsRefusedOrAgrees() throws {
        for frame in Self.plainFrames + GoldenFrames.all {
            for length in 0...frame.count {
                var cut = Array(frame[0..<length])
                fixIPLength(&cut)
                if let header = flowHeader(cut) { try expectAgreement(cut, header) }
            }
        }
    }

    @Test func seededMutationFuzzAgreesWithTheFullParser() throws {
        var random = SplitMix64(seed: 0xF10_4EAD)
        let seeds = Self.plainFrames + GoldenFrames.all
        var accepted = 0
        for _ in 0..<40_000 {
            var frame = seeds.randomElement(using: &random)!
            mutate(&frame, times: 1...3, using: &random)
            if let header = flowHeader(frame) {
                accepted += 1
                try expectAgreement(frame, header)
            }
        }
        // The fuzz must exercise acceptance, not only refusals.
        #expect(accepted > 2_000)
    }

    func flowHeader(_ bytes: [UInt8]) -> FlowHeader? {
        bytes.withUnsafeBytes { FlowHeaderParser.parse($0) }
    }

    /// The full parser's reading of `frame` must match the flow header in everything the flow-hit
    /// path uses, and describe a packet the hit path may forward as is.
    func expectAgreement(_ frame: [UInt8], _ header: FlowHeader,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
        let packet = try parse(frame)
        #expect(packet.tuple == header.tuple, sourceLocation: sourceLocation)
        #expect(packet.tcpFlags == header.tcpFlags, sourceLocation: sourceLocation)
        #expect(packet.l3Offset == header.l3Offset, sourceLocation: sourceLocation)
        #expect(packet.ipLength == header.ipLength, sourceLocation: sourceLocation)
        #expect(packet.fragment == nil && packet.icmp == nil && packet.hasTransportHeader,
                sourceLocation: sourceLocation)
        #expect(packet.hopLimit > 1, sourceLocation: sourceLocation)
    }
}

// TCP reset generation: golden frames (computed independently with a Python script using the
// RFC 1071 checksum), the RFC 9293 / RFC 5961 sequence rules, IPv6 and VLAN round trips through
// the parser and the checksum helpers, and the refusals (RST, fragments, groups, small buffers).

import SluicePacket
import Testing

@Suite struct TCPResetTests {
    static let client: UInt128 = 0x0A00_0002  // 10.0.0.2
    static let server: UInt128 = 0xC633_6407  // 198.51.100.7
    static let tuple = FiveTuple(family: .v4, protocolNumber: 6, source: client, destination: server,
                                 sourcePort: 41000, destinationPort: 443)
    static let tuple6 = FiveTuple(family: .v6, protocolNumber: 6, source: 0xFD00 << 112 | 2,
                                  destination: 0x2001_0db8 << 96 | 7, sourcePort: 41000, destinationPort: 443)

    /// From 198.51.100.7:443 to 10.0.0.2:41000, RST, seq 5000 (the segment's ACK), TTL 64, DF.
    static let goldenToSender: [UInt8] = [
        0x02, 0x00, 0x00, 0x00, 0x01, 0x02, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, 0x08, 0x00, 0x45, 0x00, 0x00, 0x28,
        0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x06, 0x94, 0xC6, 0x33, 0x64, 0x07, 0x0A, 0x00, 0x00, 0x02, 0x01, 0xBB,
        0xA0, 0x28, 0x00, 0x00, 0x13, 0x88, 0x00, 0x00, 0x00, 0x00, 0x50, 0x04, 0x00, 0x00, 0xC6, 0x38, 0x00, 0x00,
    ]
    /// From 10.0.0.2:41000 to 198.51.100.7:443, RST+ACK, seq 1000 (the dropped segment's), ack 5000.
    static let goldenToReceiver: [UInt8] = [
        0x02, 0x00, 0x00, 0x00, 0x02, 0xFE, 0x02, 0x00, 0x00, 0x00, 0x02, 0x01, 0x08, 0x00, 0x45, 0x00, 0x00, 0x28,
        0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x06, 0x94, 0x0A, 0x00, 0x00, 0x02, 0xC6, 0x33, 0x64, 0x07, 0xA0, 0x28,
        0x01, 0xBB, 0x00, 0x00, 0x03, 0xE8, 0x00, 0x00, 0x13, 0x88, 0x50, 0x14, 0x00, 0x00, 0xC2, 0x40, 0x00, 0x00,
    ]

    static func segment(_ tuple: FiveTuple = tuple, flags: TCPFlags = [.ack, .psh], sequence: UInt32 = 1000,
                        acknowledgement: UInt32 = 5000, vlan: UInt16? = nil) -> FrameBuilder {
        var builder = FrameBuilder(destinationMAC: MACAddress(0x02_00_00_00_01_01),
                                   sourceMAC: MACAddress(0x02_00_00_00_01_02), vlanID: vlan, tuple: tuple,
                                   tcpFlags: flags)
        builder.sequenceNumber = sequence
        builder.acknowledgementNumber = acknowledgement
        return builder
    }

    static func reset(_ target: TCPResetTarget, _ original: [UInt8], consumed: Bool = false,
                      bufferSize: Int = 128) throws -> [UInt8]? {
        let packet = try parse(original)
        var output = [UInt8](repeating: 0xEE, count: bufferSize)
        let sender = target == .sender
        let length = output.withUnsafeMutableBytes { buffer in
            original.withUnsafeBytes { frame in
                TCPResetBuilder.write(
                    target, answering: packet, original: frame, into: buffer,
                    sourceMAC: MACAddress(sender ? 0x02_00_00_00_01_01 : 0x02_00_00_00_02_01),
                    destinationMAC: MACAddress(sender ? 0x02_00_00_00_01_02 : 0x02_00_00_00_02_FE), consumed: consumed)
            }
        }
        return length.map { Array(output[0..<$0]) }
    }

    static func fields(_ frame: [UInt8]) throws -> (packet: ParsedPacket, sequence: UInt32, ack: UInt32) {
        let packet = try parse(frame)
        let (sequence, ack) = frame.withUnsafeBytes {
            ($0.bigEndianUInt32(at: packet.l4Offset + 4), $0.bigEndianUInt32(at: packet.l4Offset + 8))
        }
        return (packet, sequence, ack)
    }

    /// `TCPResetBuilder.fields` as [sequence, acknowledgement, flags] ([] for nil), easy to compare.
    static func values(_ target: TCPResetTarget, sequence: UInt32, acknowledgement: UInt32, flags: TCPFlags,
                       payloadLength: Int, consumed: Bool = false) -> [UInt32] {
        guard let reset = TCPResetBuilder.fields(target, sequence: sequence, acknowledgement: acknowledgement,
                                                 flags: flags, payloadLength: payloadLength, consumed: consumed)
        else { return [] }
        return [reset.sequence, reset.acknowledgement, UInt32(reset.flags.rawValue)]
    }

    @Test func goldenIPv4Frames() throws {
        let original = Self.segment().bytes(payload: Array(repeating: 0x42, count: 10))
        #expect(try Self.reset(.sender, original) == Self.goldenToSender)
        #expect(try Self.reset(.receiver, original) == Self.goldenToReceiver)
        // The independent goldens also verify with the project's checksum helpers.
        for golden in [Self.goldenToSender, Self.goldenToReceiver] {
            let packet = try parse(golden)
            #expect(golden.withUnsafeBytes { InternetChecksum.verifyTransport($0, packet) })
            #expect(golden.withUnsafeBytes { InternetChecksum.verifyIPv4Header($0, l3Offset: 14) })
            #expect(packet.tcpFlags.contains(.rst))
        }
    }

    @Test(arguments: [nil, 9] as [UInt16?])
    func ipv6AndVLANResetsParseVerifyAndAddressBothEnds(vlan: UInt16?) throws {
        let original = Self.segment(Self.tuple6, flags: [.ack], sequence: 0xFFFF_FFF0, acknowledgement: 77, vlan: vlan)
            .bytes(payload: Array(repeating: 1, count: 100))
        let toSender = try #require(try Self.reset(.sender, original))
        let toReceiver = try #require(try Self.reset(.receiver, original))
        #expect(toSender.count == TCPResetBuilder.frameLength(family: .v6, vlan: vlan != nil))
        let sender = try Self.fields(toSender)
        #expect(sender.packet.tuple == Self.tuple6.reversed() && sender.packet.vlanID == vlan)
        #expect(sender.sequence == 77 && sender.packet.tcpFlags == .rst && sender.packet.hopLimit == 64)
        let receiver = try Self.fields(toReceiver)
        #expect(receiver.packet.tuple == Self.tuple6 && receiver.packet.vlanID == vlan)
        #expect(receiver.sequence == 0xFFFF_FFF0 && receiver.ack == 77 && receiver.packet.tcpFlags == [.rst, .ack])
        for frame in [toSender, toReceiver] {
            let packet = try parse(frame)
            #expect(frame.withUnsafeBytes { InternetChecksum.verifyTransport($0, packet) })
            #expect(packet.packetEnd == frame.count && packet.payloadOffset == packet.packetEnd)
        }
        // A delivered segment's end: SEG.SEQ + SEG.LEN, wrapping.
        let consumed = try Self.fields(try #require(try Self.reset(.receiver, original, consumed: true)))
        #expect(consumed.sequence == 0xFFFF_FFF0 &+ 100)
    }

    @Test func sequenceRulesFollowRFC9293() throws {
        // Sender of a segment with ACK: <SEQ=SEG.ACK><CTL=RST>.
        #expect(Self.values(.sender, sequence: 10, acknowledgement: 20, flags: [.ack], payloadLength: 5)
            == [20, 0, 0x04])
        // Sender of a bare SYN (a refused connection): <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>.
        #expect(Self.values(.sender, sequence: 10, acknowledgement: 0, flags: [.syn], payloadLength: 0)
            == [0, 11, 0x14])
        // SYN with data (fast open) and FIN count in SEG.LEN.
        #expect(Self.values(.sender, sequence: 10, acknowledgement: 0, flags: [.syn, .fin],
                                       payloadLength: 3) == [0, 15, 0x14])
        // Receiver: the dropped segment's SEQ (its RCV.NXT), or its end when delivered.
        #expect(Self.values(.receiver, sequence: 10, acknowledgement: 20, flags: [.ack, .fin],
                                       payloadLength: 5) == [10, 20, 0x14])
        #expect(Self.values(.receiver, sequence: 10, acknowledgement: 20, flags: [.ack, .fin],
                                       payloadLength: 5, consumed: true) == [16, 20, 0x14])
        // Receiver of a bare SYN: nothing it could accept.
        #expect(Self.values(.receiver, sequence: 10, acknowledgement: 0, flags: [.syn], payloadLength: 0)
            == [])
        let syn = Self.segment(flags: [.syn], sequence: 99, acknowledgement: 0).bytes()
        let refused = try Self.fields(try #require(try Self.reset(.sender, syn)))
        #expect(refused.sequence == 0 && refused.ack == 100 && refused.packet.tcpFlags == [.rst, .ack])
        #expect(try Self.reset(.receiver, syn) == nil)
    }

    @Test func resetsAreRefusedForResetsNonTCPFragmentsGroupsAndSmallBuffers() throws {
        let rst = Self.segment(flags: [.rst, .ack]).bytes()
        #expect(try Self.reset(.sender, rst) == nil && Self.reset(.receiver, rst) == nil)
        var udpTuple = Self.tuple
        udpTuple.protocolNumber = 17
        #expect(try Self.reset(.sender, FrameBuilder(tuple: udpTuple).bytes(payload: [1])) == nil)
        let fragment = try parse(GoldenFrames.ipv4LaterFragment)
        #expect(!GoldenFrames.ipv4LaterFragment.withUnsafeBytes { TCPResetBuilder.mayReset(fragment, frame: $0) })
        var broadcast = Self.segment()
        broadcast.destinationMAC = .broadcast
        #expect(try Self.reset(.sender, broadcast.bytes()) == nil)
        var multicast = Self.tuple
        multicast.destination = 0xE000_00FB
        #expect(try Self.reset(.sender, Self.segment(multicast).bytes()) == nil)
        let original = Self.segment().bytes(payload: [1, 2])
        #expect(try Self.reset(.sender, original, bufferSize: 53) == nil)
        #expect(try Self.reset(.sender, original, bufferSize: 54)?.count == 54)
        // A frame shorter than the parsed packet claims is refused, not read past.
        let packet = try parse(original)
        let short = Array(original.prefix(40))
        var output = [UInt8](repeating: 0, count: 128)
        let length = output.withUnsafeMutableBytes { buffer in
            short.withUnsafeBytes { frame in
                TCPResetBuilder.write(.sender, answering: packet, original: frame, into: buffer, sourceMAC: MACAddress(1),
                                      destinationMAC: MACAddress(2))
            }
        }
        #expect(length == nil)
    }
}

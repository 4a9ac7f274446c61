// Round trips through FrameBuilder and the parser, and ICMP error generation: the error must
// parse, verify, and lead back to the flow of the packet it answers.

import SluicePacket
import Testing

@Suite struct BuilderTests {
    static let v4 = FiveTuple(family: .v4, protocolNumber: 17, source: 0x0A00_0001, destination: 0x0808_0808,
                              sourcePort: 40000, destinationPort: 53)
    static let v6 = FiveTuple(family: .v6, protocolNumber: 6, source: 0x2001_0db8 << 96 | 1,
                              destination: 0x2001_0db8 << 96 | 0x99, sourcePort: 40001, destinationPort: 443)

    @Test func roundTrips() throws {
        for tuple in [Self.v4, Self.v6] {
            for vlan: UInt16? in [nil, 7] {
                let builder = FrameBuilder(vlanID: vlan, tuple: tuple, hopLimit: 9, tcpFlags: [.fin, .ack])
                let frame = builder.bytes(payload: [1, 2, 3])
                let packet = try parse(frame)
                #expect(packet.tuple == tuple)
                #expect(packet.vlanID == vlan)
                #expect(packet.hopLimit == 9)
                #expect(packet.packetEnd - packet.payloadOffset == 3)
                if tuple.protocolNumber == 6 { #expect(packet.tcpFlags == [.fin, .ack]) }
            }
        }
    }

    @Test func echoReplyTupleIsTheRequestReversed() throws {
        let request = FiveTuple(family: .v6, protocolNumber: 58, source: 1, destination: 2, sourcePort: 77, destinationPort: 77)
        let reply = FiveTuple(family: .v6, protocolNumber: 58, source: 2, destination: 1, sourcePort: 77, destinationPort: 77)
        let parsedRequest = try parse(FrameBuilder(tuple: request).bytes())
        let parsedReply = try parse(FrameBuilder(tuple: reply, icmpType: 129).bytes())
        #expect(parsedRequest.icmp?.kind == .echoRequest && parsedReply.icmp?.kind == .echoReply)
        #expect(parsedReply.tuple == parsedRequest.tuple.reversed())
    }

    @Test(arguments: [BuilderTests.v4, BuilderTests.v6], [ICMPErrorMessage.timeExceeded,
        .destinationUnreachable(.administrativelyProhibited), .packetTooBig(mtu: 1400)])
    func icmpErrorsLeadBackToTheFlow(tuple: FiveTuple, message: ICMPErrorMessage) throws {
        let original = FrameBuilder(vlanID: 5, tuple: tuple, hopLimit: 1).bytes(payload: Array(repeating: 0xAB, count: 1000))
        let packet = try parse(original)
        #expect(original.withUnsafeBytes { ICMPErrorBuilder.mayAnswer(packet, frame: $0) })
        let gateway: UInt128 = tuple.family == .v4 ? 0x0A00_00FE : 0x2001_0db8 << 96 | 0xFE
        var output = [UInt8](repeating: 0, count: 2048)
        let length = try #require(output.withUnsafeMutableBytes { buffer in
            original.withUnsafeBytes { frame in
                ICMPErrorBuilder.write(
                    message, answering: packet, original: frame, from: gateway, into: buffer,
                    sourceMAC: MACAddress(0x02_00_00_00_00_FE), destinationMAC: MACAddress(0x02_00_00_00_00_01))
            }
        })
        let error = Array(output[0..<length])
        #expect(error.count - 18 <= (tuple.family == .v4 ? 576 : 1280))
        let parsed = try parse(error)
        #expect(parsed.vlanID == 5)
        #expect(parsed.icmp?.kind == .error)
        #expect(parsed.tuple.source == gateway && parsed.tuple.destination == tuple.source)
        #expect(parsed.icmp?.embedded?.tuple == tuple)
        #expect(error.withUnsafeBytes { InternetChecksum.verifyTransport($0, parsed) })
        if tuple.family == .v4 {
            #expect(error.withUnsafeBytes { InternetChecksum.verifyIPv4Header($0, l3Offset: 18) })
        }
    }

    @Test func errorsAreNotSentForErrorsFragmentsOrGroups() throws {
        let timeExceeded = try parse(GoldenFrames.ipv4TimeExceeded)
        #expect(!GoldenFrames.ipv4TimeExceeded.withUnsafeBytes { ICMPErrorBuilder.mayAnswer(timeExceeded, frame: $0) })
        let fragment = try parse(GoldenFrames.ipv4LaterFragment)
        #expect(!GoldenFrames.ipv4LaterFragment.withUnsafeBytes { ICMPErrorBuilder.mayAnswer(fragment, frame: $0) })
        let broadcast = FrameBuilder(destinationMAC: .broadcast, tuple: Self.v4).bytes()
        let parsedBroadcast = try parse(broadcast)
        #expect(!broadcast.withUnsafeBytes { ICMPErrorBuilder.mayAnswer(parsedBroadcast, frame: $0) })
        var multicast = Self.v4
        multicast.destination = 0xE000_00FB
        let toMulticast = FrameBuilder(tuple: multicast).bytes()
        let parsedMulticast = try parse(toMulticast)
        #expect(!toMulticast.withUnsafeBytes { ICMPErrorBuilder.mayAnswer(parsedMulticast, frame: $0) })
    }

    @Test func tooSmallBuffersAreRefused() throws {
        let original = FrameBuilder(tuple: Self.v4).bytes(payload: [1, 2, 3, 4])
        let packet = try parse(original)
        var output = [UInt8](repeating: 0, count: 40)
        let length = output.withUnsafeMutableBytes { buffer in
            original.withUnsafeBytes { frame in
                ICMPErrorBuilder.write(.timeExceeded, answering: packet, original: frame, from: 1, into: buffer,
                                       sourceMAC: MACAddress(1), destinationMAC: MACAddress(2))
            }
        }
        #expect(length == nil)
        #expect(FrameBuilder(tuple: Self.v4).bytes().count == 42)
    }

    @Test func macAddressText() {
        #expect(MACAddress(0x02, 0xAB, 0, 1, 0xFF, 0x10).description == "02:ab:00:01:ff:10")
    }
}

// Generates the TCP resets a gateway sends when it ends a connection it will no longer forward
// (a TLS deny, a policy cut, optionally a denied new flow): one to the packet's sender, written as
// if from the receiver, and one to the receiver, written as if from the sender, so that neither
// end waits on a connection the gateway silently dropped. Sequence rules: RFC 9293 3.10.7.1 for
// the sender, RFC 5961 3.2 (a reset is accepted only at exactly RCV.NXT) for the receiver. Frames
// are written into a caller's buffer, e.g. a fresh UMEM frame, without allocation.

/// Which end of the connection a reset is for, relative to the packet it answers.
public enum TCPResetTarget: Sendable, Hashable {
    /// The packet's sender; the reset comes from the packet's destination address and port.
    case sender
    /// The packet's receiver; the reset comes from the packet's source address and port.
    case receiver
}

/// Writes TCP RST frames. Stateless; callable from any thread.
public enum TCPResetBuilder {
    /// Length of a reset frame: Ethernet (+ VLAN tag), IP header without options, 20-byte TCP header.
    @inlinable
    public static func frameLength(family: IPFamily, vlan: Bool) -> Int {
        (vlan ? 18 : 14) + (family == .v4 ? 20 : 40) + 20
    }

    /// Whether a reset may answer `packet`: a complete, unfragmented TCP segment that is not a
    /// reset itself (never answer RST with RST, RFC 9293), between unicast addresses and not sent to
    /// an Ethernet group address (`ICMPErrorBuilder.mayAnswer`'s address rules).
    public static func mayReset(_ packet: ParsedPacket, frame: UnsafeRawBufferPointer) -> Bool {
        guard packet.tuple.protocolNumber == IPProtocolNumber.tcp, packet.hasTransportHeader, packet.fragment == nil,
              !packet.tcpFlags.contains(.rst), packet.l4Offset + 20 <= packet.packetEnd,
              packet.packetEnd <= frame.count
        else { return false }
        return ICMPErrorBuilder.mayAnswer(packet, frame: frame)
    }

    /// The sequence number, acknowledgement number and flags of the reset for `target`, from the
    /// answered segment's fields. nil: no reset can be accepted by that end.
    ///
    /// - Sender (RFC 9293 3.10.7.1): if the segment carries ACK, `<SEQ=SEG.ACK><CTL=RST>` (the
    ///   sender's RCV.NXT exactly); otherwise `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>` (how a
    ///   refused SYN is answered: the client's connect fails with "connection refused").
    /// - Receiver: `<SEQ=SEG.SEQ><ACK=SEG.ACK><CTL=RST,ACK>`, the sender's next sequence number as
    ///   the receiver sees it. The gateway drops the answered segment, so the receiver's RCV.NXT is
    ///   SEG.SEQ, not SEG.SEQ+SEG.LEN; a reset anywhere else in the window only earns a challenge ACK
    ///   (RFC 5961 3.2). `consumed: true` gives SEG.SEQ+SEG.LEN, for a segment that was delivered.
    ///   A segment without ACK (a bare SYN) gives nil: the receiver holds no synchronized state the
    ///   reset could name.
    @inlinable
    public static func fields(
        _ target: TCPResetTarget, sequence: UInt32, acknowledgement: UInt32, flags: TCPFlags, payloadLength: Int,
        consumed: Bool = false
    ) -> (sequence: UInt32, acknowledgement: UInt32, flags: TCPFlags)? {
        let segmentLength = UInt32(truncatingIfNeeded: payloadLength) &+ (flags.contains(.syn) ? 1 : 0)
            &+ (flags.contains(.fin) ? 1 : 0)
        switch target {
        case .sender:
            if flags.contains(.ack) { return (acknowledgement, 0, .rst) }
            return (0, sequence &+ segmentLength, [.rst, .ack])
        case .receiver:
            guard flags.contains(.ack) else { return nil }
            return (consumed ? sequence &+ segmentLength : sequence, acknowledgement, [.rst, .ack])
        }
    }

    /// Writes the reset for `target` answering `packet` (parsed from `original`) into `buffer`, with
    /// the given Ethernet addresses and the packet's VLAN tag. `buffer` must not overlap `original`.
    /// Returns the frame length, or nil when `mayReset` is false, `fields` gives nil, or `buffer` is
    /// smaller than `frameLength`.
    public static func write(
        _ target: TCPResetTarget, answering packet: ParsedPacket, original: UnsafeRawBufferPointer,
        into buffer: UnsafeMutableRawBufferPointer, sourceMAC: MACAddress, destinationMAC: MACAddress,
        consumed: Bool = false, hopLimit: UInt8 = 64
    ) -> Int? {
        guard mayReset(packet, frame: original), let base = buffer.baseAddress else { return nil }
        let family = packet.tuple.family
        let total = frameLength(family: family, vlan: packet.vlanID != nil)
        guard buffer.count >= total else { return nil }
        let sequence = original.bigEndianUInt32(at: packet.l4Offset + 4)
        let acknowledgement = original.bigEndianUInt32(at: packet.l4Offset + 8)
        guard let reset = fields(target, sequence: sequence, acknowledgement: acknowledgement, flags: packet.tcpFlags,
                                 payloadLength: packet.packetEnd - packet.payloadOffset, consumed: consumed)
        else { return nil }
        let tuple = target == .sender ? packet.tuple.reversed() : packet.tuple

        let l3 = packet.vlanID == nil ? 14 : 18
        let l4 = l3 + (family == .v4 ? 20 : 40)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: total)
        PacketRewriter.writeEthernetHeader(base, destination: destinationMAC, source: sourceMAC,
                                           etherType: family == .v4 ? EtherType.ipv4 : EtherType.ipv6,
                                           vlanID: packet.vlanID)

        base.storeBigEndian(tuple.sourcePort, at: l4)
        base.storeBigEndian(tuple.destinationPort, at: l4 + 2)
        base.storeBigEndian(reset.sequence, at: l4 + 4)
        base.storeBigEndian(reset.acknowledgement, at: l4 + 8)
        base.storeByte(5 << 4, at: l4 + 12)
        base.storeByte(reset.flags.rawValue, at: l4 + 13)
        // Window and urgent pointer stay zero.

        let frame = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<total])
        let segment = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(frame)[l4..<total])
        let pseudo: UInt64
        if family == .v4 {
            base.storeByte(0x45, at: l3)
            base.storeBigEndian(UInt16(40), at: l3 + 2)
            base.storeBigEndian(UInt16(0x4000), at: l3 + 6)  // DF, as the endpoints' stacks send resets
            base.storeByte(hopLimit, at: l3 + 8)
            base.storeByte(IPProtocolNumber.tcp, at: l3 + 9)
            base.storeBigEndian(tuple.sourceV4, at: l3 + 12)
            base.storeBigEndian(tuple.destinationV4, at: l3 + 16)
            InternetChecksum.writeIPv4Header(frame, l3Offset: l3)
            pseudo = InternetChecksum.addPseudoHeaderV4(
                source: tuple.sourceV4, destination: tuple.destinationV4, protocolNumber: IPProtocolNumber.tcp,
                length: 20)
        } else {
            base.storeBigEndian(UInt32(0x6000_0000), at: l3)
            base.storeBigEndian(UInt16(20), at: l3 + 4)
            base.storeByte(IPProtocolNumber.tcp, at: l3 + 6)
            base.storeByte(hopLimit, at: l3 + 7)
            base.storeBigEndian(tuple.source, at: l3 + 8)
            base.storeBigEndian(tuple.destination, at: l3 + 24)
            pseudo = InternetChecksum.addPseudoHeaderV6(
                source: tuple.source, destination: tuple.destination, protocolNumber: IPProtocolNumber.tcp, length: 20)
        }
        base.storeBigEndian(InternetChecksum.finish(InternetChecksum.add(segment, to: pseudo)), at: l4 + 16)
        return total
    }
}

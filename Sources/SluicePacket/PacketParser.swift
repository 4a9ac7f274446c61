// Parses an Ethernet frame (with at most one 802.1Q tag) carrying IPv4 or IPv6 down to the
// transport header, for the per-packet hot path:
//
//   [Ethernet 14][VLAN 4]? ─► IPv4 [options] ──────────────────────────┐
//                          └► IPv6 [hop-by-hop][routing|dest|fragment]* ┴► TCP | UDP | ICMP(v6) [quoted IP + 8]
//
// Every length is checked before the bytes it covers are read, so truncated or hostile input
// ends in a `ParseFailure`, never a trap. No allocation, no ARC, no existentials: typed throws
// carry a one-byte enum, and the result is a plain struct.

/// Parses frames into `ParsedPacket`s. Stateless; callable from any thread.
public enum PacketParser {
    /// The most IPv6 extension headers walked before a packet is rejected. Real traffic
    /// carries zero to two; the bound stops a frame of back-to-back 8-byte headers from making
    /// the walk long.
    public static let maxExtensionHeaders = 8

    /// Parses the frame in `frame`, which starts at the Ethernet destination address.
    @inlinable
    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ParseFailure) -> ParsedPacket {
        let count = frame.count
        guard count >= 14 else { throw .truncatedEthernet }
        var etherType = frame.bigEndianUInt16(at: 12)
        var offset = 14
        var vlanID: UInt16? = nil
        if etherType == EtherType.vlan {
            guard count >= 18 else { throw .truncatedVLANTag }
            vlanID = frame.bigEndianUInt16(at: 14) & 0x0FFF
            etherType = frame.bigEndianUInt16(at: 16)
            offset = 18
            if etherType == EtherType.vlan || etherType == 0x88A8 { throw .stackedVLANTags }
        }
        var packet: ParsedPacket
        switch etherType {
        case EtherType.ipv4:
            packet = try parseIPv4(frame, at: offset)
        case EtherType.ipv6:
            packet = try parseIPv6(frame, at: offset)
        default:
            throw .unsupportedEtherType
        }
        packet.vlanID = vlanID
        packet.etherType = etherType
        return packet
    }

    @inlinable
    static func parseIPv4(_ frame: UnsafeRawBufferPointer, at l3: Int) throws(ParseFailure) -> ParsedPacket {
        let available = frame.count - l3
        guard available >= 20 else { throw .truncatedIPv4Header }
        let versionAndLength = frame.byte(at: l3)
        guard versionAndLength >> 4 == 4 else { throw .ipVersionMismatch }
        let headerLength = Int(versionAndLength & 0x0F) * 4
        guard headerLength >= 20 else { throw .badIPv4HeaderLength }
        guard available >= headerLength else { throw .truncatedIPv4Header }
        let totalLength = Int(frame.bigEndianUInt16(at: l3 + 2))
        guard totalLength >= headerLength else { throw .badIPv4TotalLength }
        guard totalLength <= available else { throw .truncatedIPv4Packet }

        let flagsAndOffset = frame.bigEndianUInt16(at: l3 + 6)
        let fragmentOffset = Int(flagsAndOffset & 0x1FFF) * 8
        let moreFragments = flagsAndOffset & 0x2000 != 0
        var fragment: FragmentInfo? = nil
        if moreFragments || fragmentOffset != 0 {
            fragment = FragmentInfo(
                offset: fragmentOffset, moreFragments: moreFragments,
                identification: UInt32(frame.bigEndianUInt16(at: l3 + 4)))
        }
        let protocolNumber = frame.byte(at: l3 + 9)
        var packet = ParsedPacket(
            tuple: FiveTuple(
                family: .v4, protocolNumber: protocolNumber,
                source: UInt128(frame.bigEndianUInt32(at: l3 + 12)),
                destination: UInt128(frame.bigEndianUInt32(at: l3 + 16))),
            vlanID: nil, etherType: EtherType.ipv4, l3Offset: l3, l4Offset: l3 + headerLength,
            payloadOffset: l3 + headerLength, packetEnd: l3 + totalLength, hopLimit: frame.byte(at: l3 + 8),
            tcpFlags: [], hasTransportHeader: false, hasIPv4Options: headerLength > 20, fragment: fragment,
            icmp: nil)
        // Only the first fragment carries the transport header; later ones are judged (or
        // dropped) by the caller on the fragment flag alone.
        if fragmentOffset == 0 {
            try parseTransport(frame, into: &packet)
        }
        return packet
    }

    @inlinable
    static func parseIPv6(_ frame: UnsafeRawBufferPointer, at l3: Int) throws(ParseFailure) -> ParsedPacket {
        let available = frame.count - l3
        guard available >= 40 else { throw .truncatedIPv6Header }
        guard frame.byte(at: l3) >> 4 == 6 else { throw .ipVersionMismatch }
        let end = l3 + 40 + Int(frame.bigEndianUInt16(at: l3 + 4))
        guard end <= frame.count else { throw .truncatedIPv6Packet }
        let walk = try walkExtensionHeaders(frame, from: l3 + 40, end: end, nextHeader: frame.byte(at: l3 + 6))
        var packet = ParsedPacket(
            tuple: FiveTuple(
                family: .v6, protocolNumber: walk.protocolNumber,
                source: frame.bigEndianUInt128(at: l3 + 8), destination: frame.bigEndianUInt128(at: l3 + 24)),
            vlanID: nil, etherType: EtherType.ipv6, l3Offset: l3, l4Offset: walk.l4Offset,
            payloadOffset: walk.l4Offset, packetEnd: end, hopLimit: frame.byte(at: l3 + 7),
            tcpFlags: [], hasTransportHeader: false, hasIPv4Options: false, fragment: walk.fragment, icmp: nil)
        if walk.fragment?.offset ?? 0 == 0 {
            try parseTransport(frame, into: &packet)
        }
        return packet
    }

    /// Walks IPv6 extension headers from `start` (the byte after the fixed header) up to `end`.
    /// Returns the upper-layer protocol, where it starts, and the fragment header if one was seen.
    @inlinable
    static func walkExtensionHeaders(
        _ frame: UnsafeRawBufferPointer, from start: Int, end: Int, nextHeader first: UInt8
    ) throws(ParseFailure) -> (protocolNumber: UInt8, l4Offset: Int, fragment: FragmentInfo?) {
        var next = first
        var cursor = start
        var fragment: FragmentInfo? = nil
        var walked = 0
        while true {
            switch next {
            case IPProtocolNumber.hopByHop, IPProtocolNumber.routing, IPProtocolNumber.destinationOptions:
                // RFC 8200 4.3: hop-by-hop may only follow the fixed header.
                if next == IPProtocolNumber.hopByHop && cursor != start { throw .hopByHopNotFirst }
                guard end - cursor >= 8 else { throw .truncatedExtensionHeader }
                let length = (Int(frame.byte(at: cursor + 1)) + 1) * 8
                guard end - cursor >= length else { throw .truncatedExtensionHeader }
                next = frame.byte(at: cursor)
                cursor += length
            case IPProtocolNumber.fragment:
                guard end - cursor >= 8 else { throw .truncatedExtensionHeader }
                let offsetAndFlags = frame.bigEndianUInt16(at: cursor + 2)
                fragment = FragmentInfo(
                    offset: Int(offsetAndFlags & 0xFFF8), moreFragments: offsetAndFlags & 1 != 0,
                    identification: frame.bigEndianUInt32(at: cursor + 4))
                next = frame.byte(at: cursor)
                cursor += 8
                // The bytes after a non-first fragment's header are the middle of some payload,
                // not headers: stop here whatever the next-header field says.
                if offsetAndFlags & 0xFFF8 != 0 { return (next, cursor, fragment) }
            default:
                return (next, cursor, fragment)
            }
            walked += 1
            if walked > maxExtensionHeaders { throw .tooManyExtensionHeaders }
        }
    }

    /// Parses TCP, UDP, ICMP (in IPv4) or ICMPv6 (in IPv6) at `packet.l4Offset`; leaves other
    /// protocols untouched.
    @inlinable
    static func parseTransport(_ frame: UnsafeRawBufferPointer, into packet: inout ParsedPacket) throws(ParseFailure) {
        let l4 = packet.l4Offset
        let available = packet.packetEnd - l4
        switch (packet.tuple.protocolNumber, packet.tuple.family) {
        case (IPProtocolNumber.tcp, _):
            guard available >= 20 else { throw .truncatedTCPHeader }
            let dataOffset = Int(frame.byte(at: l4 + 12) >> 4) * 4
            guard dataOffset >= 20 else { throw .badTCPDataOffset }
            guard available >= dataOffset else { throw .truncatedTCPHeader }
            packet.tuple.sourcePort = frame.bigEndianUInt16(at: l4)
            packet.tuple.destinationPort = frame.bigEndianUInt16(at: l4 + 2)
            packet.tcpFlags = TCPFlags(rawValue: frame.byte(at: l4 + 13))
            packet.payloadOffset = l4 + dataOffset
        case (IPProtocolNumber.udp, _):
            guard available >= 8 else { throw .truncatedUDPHeader }
            let udpLength = Int(frame.bigEndianUInt16(at: l4 + 4))
            // A first fragment's UDP length covers the whole datagram, not this fragment.
            guard udpLength >= 8, packet.fragment != nil || udpLength <= available else { throw .badUDPLength }
            packet.tuple.sourcePort = frame.bigEndianUInt16(at: l4)
            packet.tuple.destinationPort = frame.bigEndianUInt16(at: l4 + 2)
            packet.payloadOffset = l4 + 8
        case (IPProtocolNumber.icmp, .v4), (IPProtocolNumber.icmpv6, .v6):
            guard available >= 8 else { throw .truncatedICMPHeader }
            let type = frame.byte(at: l4)
            let kind = messageKind(type: type, family: packet.tuple.family)
            var info = ICMPInfo(type: type, code: frame.byte(at: l4 + 1), kind: kind, identifier: 0, embedded: nil)
            switch kind {
            case .echoRequest, .echoReply:
                info.identifier = frame.bigEndianUInt16(at: l4 + 4)
                packet.tuple.sourcePort = info.identifier
                packet.tuple.destinationPort = info.identifier
            case .error:
                info.embedded = try parseEmbedded(
                    frame, at: l4 + 8, end: packet.packetEnd, family: packet.tuple.family)
            case .other:
                break
            }
            packet.icmp = info
            packet.payloadOffset = l4 + 8
        default:
            return
        }
        packet.hasTransportHeader = true
    }

    /// Classifies an ICMP (v4) or ICMPv6 type for the flow logic.
    @inlinable
    public static func messageKind(type: UInt8, family: IPFamily) -> ICMPMessageKind {
        switch family {
        case .v4:
            switch type {
            case 8: return .echoRequest
            case 0: return .echoReply
            case 3, 4, 5, 11, 12: return .error
            default: return .other
            }
        case .v6:
            switch type {
            case 128: return .echoRequest
            case 129: return .echoReply
            case 1...4: return .error
            default: return .other
            }
        }
    }

    /// Parses the packet quoted by an ICMP error: a complete IP header of the outer packet's
    /// family and the first 8 bytes of its transport header (RFC 792, RFC 4443 2.4).
    @inlinable
    static func parseEmbedded(
        _ frame: UnsafeRawBufferPointer, at l3: Int, end: Int, family: IPFamily
    ) throws(ParseFailure) -> EmbeddedHeader {
        let available = end - l3
        guard available >= 1 else { throw .truncatedEmbeddedHeader }
        let version = frame.byte(at: l3) >> 4
        var tuple: FiveTuple
        var l4: Int
        var isFragment: Bool
        var isFirst: Bool
        switch family {
        case .v4:
            guard version == 4 else { throw .badEmbeddedHeader }
            guard available >= 20 else { throw .truncatedEmbeddedHeader }
            let headerLength = Int(frame.byte(at: l3) & 0x0F) * 4
            guard headerLength >= 20 else { throw .badEmbeddedHeader }
            guard available >= headerLength else { throw .truncatedEmbeddedHeader }
            let flagsAndOffset = frame.bigEndianUInt16(at: l3 + 6)
            isFragment = flagsAndOffset & 0x3FFF != 0
            isFirst = flagsAndOffset & 0x1FFF == 0
            tuple = FiveTuple(
                family: .v4, protocolNumber: frame.byte(at: l3 + 9),
                source: UInt128(frame.bigEndianUInt32(at: l3 + 12)),
                destination: UInt128(frame.bigEndianUInt32(at: l3 + 16)))
            l4 = l3 + headerLength
        case .v6:
            guard version == 6 else { throw .badEmbeddedHeader }
            guard available >= 40 else { throw .truncatedEmbeddedHeader }
            // The quote is cut short by the error's size limit, so its payload length is not
            // checked; the walk is bounded by what was quoted.
            let walk: (protocolNumber: UInt8, l4Offset: Int, fragment: FragmentInfo?)
            do {
                walk = try walkExtensionHeaders(frame, from: l3 + 40, end: end, nextHeader: frame.byte(at: l3 + 6))
            } catch .tooManyExtensionHeaders, .hopByHopNotFirst {
                throw .badEmbeddedHeader
            } catch {
                throw .truncatedEmbeddedHeader
            }
            isFragment = walk.fragment != nil
            isFirst = walk.fragment?.offset ?? 0 == 0
            tuple = FiveTuple(
                family: .v6, protocolNumber: walk.protocolNumber,
                source: frame.bigEndianUInt128(at: l3 + 8), destination: frame.bigEndianUInt128(at: l3 + 24))
            l4 = walk.l4Offset
        }
        if isFirst {
            guard end - l4 >= 8 else { throw .truncatedEmbeddedHeader }
            switch tuple.protocolNumber {
            case IPProtocolNumber.tcp, IPProtocolNumber.udp:
                tuple.sourcePort = frame.bigEndianUInt16(at: l4)
                tuple.destinationPort = frame.bigEndianUInt16(at: l4 + 2)
            case IPProtocolNumber.icmp where family == .v4, IPProtocolNumber.icmpv6 where family == .v6:
                let kind = messageKind(type: frame.byte(at: l4), family: family)
                if kind == .echoRequest || kind == .echoReply {
                    tuple.sourcePort = frame.bigEndianUInt16(at: l4 + 4)
                    tuple.destinationPort = tuple.sourcePort
                }
            default:
                break
            }
        }
        return EmbeddedHeader(tuple: tuple, l3Offset: l3, isFragment: isFragment)
    }
}

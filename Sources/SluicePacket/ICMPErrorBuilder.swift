// Generates the ICMP/ICMPv6 errors a router sends: time exceeded when a TTL runs out,
// destination unreachable (administratively prohibited for denied flows), packet too big.
// The error quotes as much of the offending packet as fits in 576 bytes (IPv4, RFC 1812
// 4.3.2.3) or 1280 bytes (IPv6, RFC 4443 2.4(c)) and is written into a separate frame buffer,
// e.g. a fresh UMEM frame, without allocation.

/// Why a destination is unreachable.
public enum UnreachableReason: Sendable, Hashable {
    /// No route or no neighbour (ICMP 3/1, ICMPv6 1/3).
    case host
    /// No listener on the port (ICMP 3/3, ICMPv6 1/4).
    case port
    /// Forbidden by policy (ICMP 3/13, ICMPv6 1/1).
    case administrativelyProhibited
}

/// An ICMP error message kind, independent of IP version.
public enum ICMPErrorMessage: Sendable, Hashable {
    /// TTL / hop limit reached zero in transit (ICMP 11/0, ICMPv6 3/0).
    case timeExceeded
    /// The destination cannot be reached.
    case destinationUnreachable(UnreachableReason)
    /// The packet is larger than the next hop's MTU (ICMP 3/4 with next-hop MTU, ICMPv6 2/0).
    case packetTooBig(mtu: UInt32)

    func typeAndCode(_ family: IPFamily) -> (type: UInt8, code: UInt8) {
        switch (self, family) {
        case (.timeExceeded, .v4): return (11, 0)
        case (.timeExceeded, .v6): return (3, 0)
        case (.destinationUnreachable(.host), .v4): return (3, 1)
        case (.destinationUnreachable(.port), .v4): return (3, 3)
        case (.destinationUnreachable(.administrativelyProhibited), .v4): return (3, 13)
        case (.destinationUnreachable(.host), .v6): return (1, 3)
        case (.destinationUnreachable(.port), .v6): return (1, 4)
        case (.destinationUnreachable(.administrativelyProhibited), .v6): return (1, 1)
        case (.packetTooBig, .v4): return (3, 4)
        case (.packetTooBig, .v6): return (2, 0)
        }
    }
}

/// Writes ICMP/ICMPv6 error frames. Stateless; callable from any thread.
public enum ICMPErrorBuilder {
    /// Whether a router may answer `packet` with an ICMP error at all (RFC 1812 4.3.2.7,
    /// RFC 4443 2.4(e)): never for an ICMP error, a non-first fragment, or a packet sent to an
    /// Ethernet group address, to an IP multicast or limited-broadcast address, or from an
    /// unspecified or multicast source.
    public static func mayAnswer(_ packet: ParsedPacket, frame: UnsafeRawBufferPointer) -> Bool {
        if packet.icmp?.kind == .error { return false }
        if let fragment = packet.fragment, !fragment.isFirst { return false }
        if frame.count >= 6, MACAddress(from: frame, at: 0).isGroup { return false }
        let tuple = packet.tuple
        switch tuple.family {
        case .v4:
            let source = tuple.sourceV4
            let destination = tuple.destinationV4
            if destination >> 28 == 0xE || destination == 0xFFFF_FFFF { return false }
            if source == 0 || source >> 28 == 0xE || source == 0xFFFF_FFFF { return false }
        case .v6:
            if tuple.destination >> 120 == 0xFF { return false }
            if tuple.source == 0 || tuple.source >> 120 == 0xFF { return false }
        }
        return true
    }

    /// Writes an error frame answering `packet` (parsed from `original`) into `buffer`, from
    /// `gatewayAddress` (same family as the packet; see `FiveTuple` for the encoding) to the
    /// packet's source, with the given Ethernet addresses and the packet's VLAN tag. `buffer`
    /// must not overlap `original`. Returns the frame length, or nil when `buffer` cannot hold
    /// at least the quoted IP header and 8 bytes of its payload. Does not check `mayAnswer`.
    public static func write(
        _ message: ICMPErrorMessage, answering packet: ParsedPacket, original: UnsafeRawBufferPointer,
        from gatewayAddress: UInt128, into buffer: UnsafeMutableRawBufferPointer,
        sourceMAC: MACAddress, destinationMAC: MACAddress, hopLimit: UInt8 = 64
    ) -> Int? {
        guard let base = buffer.baseAddress, packet.packetEnd <= original.count else { return nil }
        let family = packet.tuple.family
        let l3 = packet.vlanID == nil ? 14 : 18
        let ipHeaderLength = family == .v4 ? 20 : 40
        let icmpOffset = l3 + ipHeaderLength
        let quoteOffset = icmpOffset + 8
        let quoteLimit = (family == .v4 ? 576 : 1280) - ipHeaderLength - 8
        let quote = min(packet.ipLength, quoteLimit, buffer.count - quoteOffset)
        let minimumQuote = min(packet.ipLength, packet.l4Offset - packet.l3Offset + 8)
        guard quote >= minimumQuote else { return nil }
        let icmpLength = 8 + quote
        let total = quoteOffset + quote

        base.initializeMemory(as: UInt8.self, repeating: 0, count: quoteOffset)
        PacketRewriter.writeEthernetHeader(base, destination: destinationMAC, source: sourceMAC,
                                           etherType: family == .v4 ? EtherType.ipv4 : EtherType.ipv6,
                                           vlanID: packet.vlanID)

        let (type, code) = message.typeAndCode(family)
        base.storeByte(type, at: icmpOffset)
        base.storeByte(code, at: icmpOffset + 1)
        if case .packetTooBig(let mtu) = message {
            if family == .v4 {
                base.storeBigEndian(UInt16(truncatingIfNeeded: min(mtu, 0xFFFF)), at: icmpOffset + 6)
            } else {
                base.storeBigEndian(mtu, at: icmpOffset + 4)
            }
        }
        (base + quoteOffset).copyMemory(from: original.baseAddress! + packet.l3Offset, byteCount: quote)

        let frame = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<total])
        let icmp = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(frame)[icmpOffset..<total])
        if family == .v4 {
            base.storeByte(0x45, at: l3)
            base.storeBigEndian(UInt16(truncatingIfNeeded: 20 + icmpLength), at: l3 + 2)
            base.storeByte(hopLimit, at: l3 + 8)
            base.storeByte(IPProtocolNumber.icmp, at: l3 + 9)
            base.storeBigEndian(UInt32(truncatingIfNeeded: gatewayAddress), at: l3 + 12)
            base.storeBigEndian(packet.tuple.sourceV4, at: l3 + 16)
            InternetChecksum.writeIPv4Header(frame, l3Offset: l3)
            base.storeBigEndian(InternetChecksum.checksum(icmp), at: icmpOffset + 2)
        } else {
            base.storeBigEndian(UInt32(0x6000_0000), at: l3)
            base.storeBigEndian(UInt16(truncatingIfNeeded: icmpLength), at: l3 + 4)
            base.storeByte(IPProtocolNumber.icmpv6, at: l3 + 6)
            base.storeByte(hopLimit, at: l3 + 7)
            base.storeBigEndian(gatewayAddress, at: l3 + 8)
            base.storeBigEndian(packet.tuple.source, at: l3 + 24)
            let pseudo = InternetChecksum.addPseudoHeaderV6(
                source: gatewayAddress, destination: packet.tuple.source, protocolNumber: IPProtocolNumber.icmpv6,
                length: icmpLength)
            base.storeBigEndian(InternetChecksum.finish(InternetChecksum.add(icmp, to: pseudo)), at: icmpOffset + 2)
        }
        return total
    }
}

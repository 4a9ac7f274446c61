// In-place edits the forwarding path makes to a frame it sends on: new Ethernet addresses and
// a decremented TTL / hop limit with the IPv4 header checksum fixed incrementally (RFC 1624),
// so a forwarded packet costs a few stores, not a checksum pass.

/// In-place frame edits for forwarding. Stateless; callable from any thread on frames it owns.
public enum PacketRewriter {
    /// Writes new destination and source MAC addresses at the start of the frame.
    @inlinable
    public static func setEthernetAddresses(
        _ frame: UnsafeMutableRawPointer, destination: MACAddress, source: MACAddress
    ) {
        destination.write(to: frame, at: 0)
        source.write(to: frame, at: 6)
    }

    /// Writes a whole Ethernet header for a frame the gateway originates (an ICMP error, a TCP
    /// reset): addresses, the 802.1Q tag of the packet it answers when that had one, and
    /// `etherType`. The IP header follows at 14, or 18 with the tag.
    @inlinable
    public static func writeEthernetHeader(
        _ frame: UnsafeMutableRawPointer, destination: MACAddress, source: MACAddress, etherType: UInt16,
        vlanID: UInt16?
    ) {
        setEthernetAddresses(frame, destination: destination, source: source)
        if let vlanID {
            frame.storeBigEndian(EtherType.vlan, at: 12)
            frame.storeBigEndian(vlanID, at: 14)
            frame.storeBigEndian(etherType, at: 16)
        } else {
            frame.storeBigEndian(etherType, at: 12)
        }
    }

    /// Decrements the IPv4 TTL or IPv6 hop limit of a parsed packet, updating the IPv4 header
    /// checksum incrementally. Returns false and leaves the frame unchanged when the hop limit
    /// is 0 or 1: such a packet must not be forwarded (answer with ICMP time exceeded).
    @inlinable
    public static func decrementHopLimit(_ frame: UnsafeMutableRawPointer, _ packet: ParsedPacket) -> Bool {
        guard packet.hopLimit > 1 else { return false }
        decrementHopLimit(frame, family: packet.tuple.family, l3Offset: packet.l3Offset)
        return true
    }

    /// Decrements the TTL or hop limit of the IP header of `family` at `l3Offset`, which the
    /// caller has checked is above 1 (`FlowHeaderParser` only accepts such packets).
    @inlinable
    public static func decrementHopLimit(_ frame: UnsafeMutableRawPointer, family: IPFamily, l3Offset l3: Int) {
        if family == .v4 {
            // TTL shares a checksummed 16-bit word with the protocol byte.
            let oldWord = frame.loadBigEndianUInt16(at: l3 + 8)
            let newWord = oldWord &- 0x0100
            let oldChecksum = frame.loadBigEndianUInt16(at: l3 + 10)
            frame.storeByte(UInt8(truncatingIfNeeded: newWord >> 8), at: l3 + 8)
            frame.storeBigEndian(InternetChecksum.update(oldChecksum, replacing: oldWord, with: newWord), at: l3 + 10)
        } else {
            frame.storeByte(frame.load(fromByteOffset: l3 + 7, as: UInt8.self) &- 1, at: l3 + 7)
        }
    }
}

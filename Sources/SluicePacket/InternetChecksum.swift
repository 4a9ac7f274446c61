// The internet checksum (RFC 1071): full computation, the TCP/UDP/ICMPv6 pseudo-header, and
// the incremental update of RFC 1624 that the forwarding path uses when it decrements a TTL.
//
// Sums are kept unfolded in a UInt64 so that pieces (pseudo-header, header, payload) can be
// added before one final fold. The sum is over big-endian 16-bit words; because 2^16 ≡ 1
// (mod 2^16 − 1), adding 32-bit big-endian words gives the same folded result with half the
// additions. A piece must start at an even offset of the checksummed data; only the last
// piece may have an odd length.

/// Internet checksum arithmetic. Stateless; callable from any thread.
public enum InternetChecksum {
    /// Adds the bytes of `data` to `sum` as big-endian 16-bit words (an odd final byte is
    /// padded with zero). The result is unfolded; see `fold`.
    @inlinable
    public static func add(_ data: UnsafeRawBufferPointer, to sum: UInt64 = 0) -> UInt64 {
        var total = sum
        var offset = 0
        let count = data.count
        while count - offset >= 4 {
            total &+= UInt64(data.bigEndianUInt32(at: offset))
            offset += 4
        }
        if count - offset >= 2 {
            total &+= UInt64(data.bigEndianUInt16(at: offset))
            offset += 2
        }
        if offset < count {
            total &+= UInt64(data.byte(at: offset)) << 8
        }
        return total
    }

    /// Folds an unfolded sum into 16 bits with end-around carry (the ones' complement sum).
    @inlinable
    public static func fold(_ sum: UInt64) -> UInt16 {
        var value = sum
        while value >> 16 != 0 {
            value = (value & 0xFFFF) &+ (value >> 16)
        }
        return UInt16(truncatingIfNeeded: value)
    }

    /// The checksum to store for data whose unfolded sum (with its checksum field zero) is `sum`.
    @inlinable
    public static func finish(_ sum: UInt64) -> UInt16 { ~fold(sum) }

    /// The checksum of `data` (with its checksum field zero), e.g. an IPv4 header.
    @inlinable
    public static func checksum(_ data: UnsafeRawBufferPointer) -> UInt16 { finish(add(data)) }

    /// Adds the IPv4 pseudo-header (RFC 793, RFC 768) to `sum`. `length` is the transport
    /// header plus payload, in bytes.
    @inlinable
    public static func addPseudoHeaderV4(
        source: UInt32, destination: UInt32, protocolNumber: UInt8, length: Int, to sum: UInt64 = 0
    ) -> UInt64 {
        sum &+ UInt64(source) &+ UInt64(destination) &+ UInt64(protocolNumber) &+ UInt64(length & 0xFFFF)
    }

    /// Adds the IPv6 pseudo-header (RFC 8200 8.1) to `sum`. `length` is the upper-layer length.
    @inlinable
    public static func addPseudoHeaderV6(
        source: UInt128, destination: UInt128, protocolNumber: UInt8, length: Int, to sum: UInt64 = 0
    ) -> UInt64 {
        var total = sum
        for shift in stride(from: 0, to: 128, by: 32) {
            total &+= UInt64(UInt32(truncatingIfNeeded: source >> UInt128(shift)))
            total &+= UInt64(UInt32(truncatingIfNeeded: destination >> UInt128(shift)))
        }
        return total &+ UInt64(UInt32(truncatingIfNeeded: length)) &+ UInt64(protocolNumber)
    }

    /// RFC 1624 eqn. 3: the checksum after one 16-bit word of the covered data changed from
    /// `old` to `new`, computed as HC' = ~(~HC + ~m + m'), which never yields the -0 that
    /// eqn. 2 can. Equals a full recomputation (both give a value in 0...0xFFFE).
    @inlinable
    public static func update(_ checksum: UInt16, replacing old: UInt16, with new: UInt16) -> UInt16 {
        ~fold(UInt64(~checksum) &+ UInt64(~old) &+ UInt64(new))
    }

    /// RFC 1624 for a 32-bit field (an IPv4 address): two 16-bit word updates in one sum.
    @inlinable
    public static func update(_ checksum: UInt16, replacing old: UInt32, with new: UInt32) -> UInt16 {
        let sum = UInt64(~checksum) &+ UInt64(~UInt16(truncatingIfNeeded: old >> 16))
            &+ UInt64(~UInt16(truncatingIfNeeded: old)) &+ UInt64(new >> 16) &+ UInt64(new & 0xFFFF)
        return ~fold(sum)
    }

    /// Where the checksum field of `packet`'s transport header is, relative to `l4Offset`; nil
    /// for protocols whose checksum this type does not handle.
    @inlinable
    static func checksumFieldOffset(_ packet: ParsedPacket) -> Int? {
        switch (packet.tuple.protocolNumber, packet.tuple.family) {
        case (IPProtocolNumber.tcp, _): return 16
        case (IPProtocolNumber.udp, _): return 6
        case (IPProtocolNumber.icmp, .v4), (IPProtocolNumber.icmpv6, .v6): return 2
        default: return nil
        }
    }

    /// The unfolded sum over `packet`'s transport header and payload, including the
    /// pseudo-header where the protocol uses one (all but ICMP for IPv4) and the checksum
    /// field as it is in the frame.
    @inlinable
    static func transportSum(_ frame: UnsafeRawBufferPointer, _ packet: ParsedPacket) -> UInt64 {
        let length = packet.packetEnd - packet.l4Offset
        var sum: UInt64 = 0
        let tuple = packet.tuple
        if tuple.family == .v4 {
            if tuple.protocolNumber != IPProtocolNumber.icmp {
                sum = addPseudoHeaderV4(
                    source: tuple.sourceV4, destination: tuple.destinationV4, protocolNumber: tuple.protocolNumber,
                    length: length)
            }
        } else {
            sum = addPseudoHeaderV6(
                source: tuple.source, destination: tuple.destination, protocolNumber: tuple.protocolNumber,
                length: length)
        }
        return add(UnsafeRawBufferPointer(rebasing: frame[packet.l4Offset..<packet.packetEnd]), to: sum)
    }

    /// Whether the transport checksum of a parsed, unfragmented TCP, UDP, ICMP or ICMPv6
    /// packet is correct. A UDP-over-IPv4 checksum of zero means "none" and is accepted.
    @inlinable
    public static func verifyTransport(_ frame: UnsafeRawBufferPointer, _ packet: ParsedPacket) -> Bool {
        guard packet.hasTransportHeader, packet.fragment == nil, let field = checksumFieldOffset(packet) else {
            return false
        }
        if packet.tuple.protocolNumber == IPProtocolNumber.udp && packet.tuple.family == .v4
            && frame.bigEndianUInt16(at: packet.l4Offset + field) == 0 {
            return true
        }
        return fold(transportSum(frame, packet)) == 0xFFFF
    }

    /// Computes and stores the transport checksum of a parsed, unfragmented TCP, UDP, ICMP or
    /// ICMPv6 packet in `frame`. Returns false (and writes nothing) for other packets.
    /// A computed UDP checksum of zero is sent as 0xFFFF (RFC 768).
    @inlinable
    @discardableResult
    public static func writeTransport(_ frame: UnsafeMutableRawBufferPointer, _ packet: ParsedPacket) -> Bool {
        guard packet.hasTransportHeader, packet.fragment == nil, let field = checksumFieldOffset(packet),
              let base = frame.baseAddress else { return false }
        base.storeBigEndian(UInt16(0), at: packet.l4Offset + field)
        var value = finish(transportSum(UnsafeRawBufferPointer(frame), packet))
        if value == 0 && packet.tuple.protocolNumber == IPProtocolNumber.udp { value = 0xFFFF }
        base.storeBigEndian(value, at: packet.l4Offset + field)
        return true
    }

    /// Whether the IPv4 header at `l3Offset` (already bounds-checked by the parser) has a
    /// correct header checksum. The parser does not check it; the forwarding path may.
    @inlinable
    public static func verifyIPv4Header(_ frame: UnsafeRawBufferPointer, l3Offset: Int) -> Bool {
        let headerLength = Int(frame.byte(at: l3Offset) & 0x0F) * 4
        return fold(add(UnsafeRawBufferPointer(rebasing: frame[l3Offset..<l3Offset + headerLength]))) == 0xFFFF
    }

    /// Computes and stores the header checksum of the IPv4 header at `l3Offset`.
    @inlinable
    public static func writeIPv4Header(_ frame: UnsafeMutableRawBufferPointer, l3Offset: Int) {
        guard let base = frame.baseAddress else { return }
        let headerLength = Int(frame[l3Offset] & 0x0F) * 4
        base.storeBigEndian(UInt16(0), at: l3Offset + 10)
        let header = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(frame)[l3Offset..<l3Offset + headerLength])
        base.storeBigEndian(checksum(header), at: l3Offset + 10)
    }
}

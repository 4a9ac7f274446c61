// The small value types a parse result is made of: address family, MAC address, the flow
// 5-tuple, TCP flags, and the protocol and EtherType numbers the parser knows. All are trivial
// (no references), so a parse result lives in registers and on the stack: no ARC, no allocation.

/// The IP version of a packet or flow.
public enum IPFamily: UInt8, Sendable, Hashable {
    case v4 = 4
    case v6 = 6
}

/// EtherType values the parser understands.
public enum EtherType {
    /// IPv4.
    public static let ipv4: UInt16 = 0x0800
    /// ARP (passed to the kernel by the XDP program; never parsed here).
    public static let arp: UInt16 = 0x0806
    /// IPv6.
    public static let ipv6: UInt16 = 0x86DD
    /// An IEEE 802.1Q VLAN tag follows.
    public static let vlan: UInt16 = 0x8100
}

/// IP protocol / IPv6 next-header numbers the parser understands.
public enum IPProtocolNumber {
    /// IPv6 hop-by-hop options header.
    public static let hopByHop: UInt8 = 0
    /// ICMP for IPv4.
    public static let icmp: UInt8 = 1
    /// TCP.
    public static let tcp: UInt8 = 6
    /// UDP.
    public static let udp: UInt8 = 17
    /// IPv6 routing header.
    public static let routing: UInt8 = 43
    /// IPv6 fragment header.
    public static let fragment: UInt8 = 44
    /// ICMPv6.
    public static let icmpv6: UInt8 = 58
    /// IPv6 "no next header".
    public static let noNextHeader: UInt8 = 59
    /// IPv6 destination options header.
    public static let destinationOptions: UInt8 = 60
}

/// A 48-bit Ethernet address, held in the low 48 bits of a `UInt64` in wire order
/// (the first byte on the wire is bits 40...47).
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address in the low 48 bits; the high 16 bits are zero.
    public var value: UInt64

    /// An address from its 48-bit value (higher bits are dropped).
    public init(_ value: UInt64) { self.value = value & 0xFFFF_FFFF_FFFF }

    /// An address from six bytes in wire order.
    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) {
        value = UInt64(b0) << 40 | UInt64(b1) << 32 | UInt64(b2) << 24 | UInt64(b3) << 16 | UInt64(b4) << 8
            | UInt64(b5)
    }

    /// The all-ones broadcast address.
    public static let broadcast = MACAddress(0xFFFF_FFFF_FFFF)

    /// Whether the group bit is set (broadcast or multicast).
    public var isGroup: Bool { value & (1 << 40) != 0 }

    /// Reads the six bytes at `offset`; the caller has checked the bounds.
    @inlinable
    public init(from buffer: UnsafeRawBufferPointer, at offset: Int) {
        let high = UInt64(buffer.bigEndianUInt16(at: offset))
        let low = UInt64(buffer.bigEndianUInt32(at: offset + 2))
        value = high << 32 | low
    }

    /// Writes the six bytes at `offset` of `pointer`.
    @inlinable
    public func write(to pointer: UnsafeMutableRawPointer, at offset: Int) {
        pointer.storeBigEndian(UInt16(truncatingIfNeeded: value >> 32), at: offset)
        pointer.storeBigEndian(UInt32(truncatingIfNeeded: value), at: offset + 2)
    }

    public var description: String {
        let hex: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
        var text = ""
        for shift in stride(from: 40, through: 0, by: -8) {
            let byte = Int((value >> UInt64(shift)) & 0xFF)
            if shift != 40 { text.append(":") }
            text.append(hex[byte >> 4])
            text.append(hex[byte & 0xF])
        }
        return text
    }
}

/// The flow key of a packet: family, protocol, addresses and ports.
///
/// Addresses are host-order integers in a `UInt128`: an IPv6 address is its 128-bit value; an
/// IPv4 address is its 32-bit value zero-extended (not the `::ffff:a.b.c.d` mapped form), and
/// `family` tells the two apart. These are the same integers as `SluicePolicy.IPAddress`'s
/// `.v4(UInt32)` and `.v6(UInt128)`, so converting is a truncation, never a parse.
///
/// Ports: TCP and UDP ports; for ICMP/ICMPv6 echo request and reply both ports hold the echo
/// identifier (so a reply's tuple is the request's tuple reversed); zero for everything else.
public struct FiveTuple: Hashable, Sendable {
    /// IPv4 or IPv6.
    public var family: IPFamily
    /// The upper-layer protocol (after IPv6 extension headers).
    public var protocolNumber: UInt8
    /// Source port, or echo identifier (see the type's documentation).
    public var sourcePort: UInt16
    /// Destination port, or echo identifier.
    public var destinationPort: UInt16
    /// Source address, host order (see the type's documentation for IPv4).
    public var source: UInt128
    /// Destination address, host order.
    public var destination: UInt128

    /// A tuple from its parts.
    @inlinable
    public init(
        family: IPFamily, protocolNumber: UInt8, source: UInt128, destination: UInt128,
        sourcePort: UInt16 = 0, destinationPort: UInt16 = 0
    ) {
        self.family = family
        self.protocolNumber = protocolNumber
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
    }

    /// The tuple of the opposite direction (replies).
    @inlinable
    public func reversed() -> FiveTuple {
        FiveTuple(
            family: family, protocolNumber: protocolNumber, source: destination, destination: source,
            sourcePort: destinationPort, destinationPort: sourcePort)
    }

    /// The source address as an IPv4 value; meaningful only when `family == .v4`.
    @inlinable public var sourceV4: UInt32 { UInt32(truncatingIfNeeded: source) }
    /// The destination address as an IPv4 value; meaningful only when `family == .v4`.
    @inlinable public var destinationV4: UInt32 { UInt32(truncatingIfNeeded: destination) }
}

/// TCP header flags (byte 13 of the TCP header).
public struct TCPFlags: OptionSet, Hashable, Sendable {
    /// The raw flag byte.
    public var rawValue: UInt8
    /// Flags from the raw byte.
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// No more data from the sender.
    public static let fin = TCPFlags(rawValue: 0x01)
    /// Synchronize sequence numbers (opens a connection).
    public static let syn = TCPFlags(rawValue: 0x02)
    /// Reset the connection.
    public static let rst = TCPFlags(rawValue: 0x04)
    /// Push.
    public static let psh = TCPFlags(rawValue: 0x08)
    /// The acknowledgment field is significant.
    public static let ack = TCPFlags(rawValue: 0x10)
    /// Urgent pointer significant.
    public static let urg = TCPFlags(rawValue: 0x20)
    /// ECN echo.
    public static let ece = TCPFlags(rawValue: 0x40)
    /// Congestion window reduced.
    public static let cwr = TCPFlags(rawValue: 0x80)
}

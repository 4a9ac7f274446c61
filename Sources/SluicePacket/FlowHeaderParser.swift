// The hot path's first look at a frame: the common packet (untagged or one 802.1Q tag, IPv4
// without options and not a fragment, or IPv6 without extension headers, carrying TCP or UDP,
// with a hop limit above 1) read straight into the few fields a flow hit needs. Everything else
// (ICMP, fragments, options, extension headers, expiring hop limits, malformed input) gets nil
// and goes to `PacketParser.parse`, which handles and classifies it.
//
// The contract, checked by tests on generated and mutated frames: whenever this returns a value,
// `PacketParser.parse` accepts the same frame and finds the same tuple, TCP flags, L3 offset and
// IP length. So the worker may judge and forward on this result alone, and fall back to the
// full parse for anything it does not cover.

/// The fields of a plain TCP/UDP packet the flow-hit path needs (see `FlowHeaderParser`).
public struct FlowHeader: Sendable, Equatable {
    /// The flow key, ports included.
    public var tuple: FiveTuple
    /// TCP flags; empty for UDP.
    public var tcpFlags: TCPFlags
    /// Where the IP header starts (14, or 18 after a VLAN tag).
    public var l3Offset: Int
    /// The IP packet's length by its own header (excludes Ethernet padding).
    public var ipLength: Int

    /// A flow header from its parts.
    @inlinable
    public init(tuple: FiveTuple, tcpFlags: TCPFlags, l3Offset: Int, ipLength: Int) {
        self.tuple = tuple
        self.tcpFlags = tcpFlags
        self.l3Offset = l3Offset
        self.ipLength = ipLength
    }
}

/// Reads `FlowHeader`s. Stateless; callable from any thread.
public enum FlowHeaderParser {
    /// The flow header of `frame` (starting at the Ethernet destination address), or nil when
    /// the frame is anything but a plain TCP/UDP packet (then use `PacketParser.parse`).
    @inlinable @inline(__always)
    public static func parse(_ frame: UnsafeRawBufferPointer) -> FlowHeader? {
        let count = frame.count
        guard count >= 14 else { return nil }
        var etherType = frame.bigEndianUInt16(at: 12)
        var l3 = 14
        if etherType == EtherType.vlan {
            guard count >= 18 else { return nil }
            etherType = frame.bigEndianUInt16(at: 16)
            l3 = 18
        }
        var header: FlowHeader
        var l4: Int
        var end: Int
        if etherType == EtherType.ipv4 {
            // Version 4 with IHL 5 (no options), 20 header bytes present.
            guard count - l3 >= 20, frame.byte(at: l3) == 0x45 else { return nil }
            let totalLength = Int(frame.bigEndianUInt16(at: l3 + 2))
            // Not a fragment (MF clear, offset 0; DF may be set) and a TTL that survives forwarding.
            guard totalLength >= 20, totalLength <= count - l3, frame.bigEndianUInt16(at: l3 + 6) & 0x3FFF == 0,
                  frame.byte(at: l3 + 8) > 1 else { return nil }
            header = FlowHeader(
                tuple: FiveTuple(family: .v4, protocolNumber: frame.byte(at: l3 + 9),
                                 source: UInt128(frame.bigEndianUInt32(at: l3 + 12)),
                                 destination: UInt128(frame.bigEndianUInt32(at: l3 + 16))),
                tcpFlags: [], l3Offset: l3, ipLength: totalLength)
            l4 = l3 + 20
            end = l3 + totalLength
        } else if etherType == EtherType.ipv6 {
            guard count - l3 >= 40, frame.byte(at: l3) >> 4 == 6, frame.byte(at: l3 + 7) > 1 else { return nil }
            let payloadLength = Int(frame.bigEndianUInt16(at: l3 + 4))
            guard l3 + 40 + payloadLength <= count else { return nil }
            // Only TCP or UDP right after the fixed header: any extension header goes the long way.
            header = FlowHeader(
                tuple: FiveTuple(family: .v6, protocolNumber: frame.byte(at: l3 + 6),
                                 source: frame.bigEndianUInt128(at: l3 + 8),
                                 destination: frame.bigEndianUInt128(at: l3 + 24)),
                tcpFlags: [], l3Offset: l3, ipLength: 40 + payloadLength)
            l4 = l3 + 40
            end = l3 + 40 + payloadLength
        } else {
            return nil
        }
        let available = end - l4
        switch header.tuple.protocolNumber {
        case IPProtocolNumber.tcp:
            guard available >= 20 else { return nil }
            let dataOffset = Int(frame.byte(at: l4 + 12) >> 4) * 4
            guard dataOffset >= 20, dataOffset <= available else { return nil }
            header.tcpFlags = TCPFlags(rawValue: frame.byte(at: l4 + 13))
        case IPProtocolNumber.udp:
            guard available >= 8 else { return nil }
            let udpLength = Int(frame.bigEndianUInt16(at: l4 + 4))
            guard udpLength >= 8, udpLength <= available else { return nil }
        default:
            return nil
        }
        header.tuple.sourcePort = frame.bigEndianUInt16(at: l4)
        header.tuple.destinationPort = frame.bigEndianUInt16(at: l4 + 2)
        return header
    }
}

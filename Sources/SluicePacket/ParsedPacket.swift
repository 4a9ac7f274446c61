// What the parser found in one frame: the flow tuple, where each layer starts, and the few
// fields the dataplane decides on (hop limit, TCP flags, fragment and ICMP details). A plain
// value with no references: it is built on the stack per packet and never allocates.

/// Fragment details of an IPv4 packet with MF set or a non-zero offset, or of an IPv6 packet
/// that carries a fragment header (even an "atomic" one with offset 0 and M clear).
public struct FragmentInfo: Hashable, Sendable {
    /// Offset of this fragment's data in the original payload, in bytes.
    public var offset: Int
    /// Whether more fragments follow (IPv4 MF, IPv6 M).
    public var moreFragments: Bool
    /// The fragment identification (16 bits for IPv4, 32 for IPv6).
    public var identification: UInt32

    /// Whether this fragment starts the original payload, so that it carries the L4 header.
    @inlinable public var isFirst: Bool { offset == 0 }

    /// Fragment details from their parts.
    @inlinable
    public init(offset: Int, moreFragments: Bool, identification: UInt32) {
        self.offset = offset
        self.moreFragments = moreFragments
        self.identification = identification
    }
}

/// The packet an ICMP or ICMPv6 error message quotes: its flow tuple as the original sender
/// sent it. The flow the error belongs to is found by looking up `tuple.reversed()` from the
/// side that receives the error (the error travels back towards the original sender).
public struct EmbeddedHeader: Hashable, Sendable {
    /// The quoted packet's tuple, in the direction it was originally sent. Ports are zero when
    /// the quoted packet was a non-first fragment.
    public var tuple: FiveTuple
    /// Offset of the quoted IP header in the frame.
    public var l3Offset: Int
    /// Whether the quoted packet was a fragment.
    public var isFragment: Bool

    /// An embedded header from its parts.
    @inlinable
    public init(tuple: FiveTuple, l3Offset: Int, isFragment: Bool) {
        self.tuple = tuple
        self.l3Offset = l3Offset
        self.isFragment = isFragment
    }
}

/// What kind of ICMP/ICMPv6 message a packet is, as far as flows are concerned.
public enum ICMPMessageKind: UInt8, Sendable, Hashable {
    /// Echo request (ICMP 8, ICMPv6 128): opens or continues an echo flow keyed by identifier.
    case echoRequest
    /// Echo reply (ICMP 0, ICMPv6 129).
    case echoReply
    /// An error that quotes the packet that caused it (ICMP 3, 4, 5, 11, 12; ICMPv6 1–4).
    case error
    /// Anything else (neighbour discovery, router advertisements, timestamps, ...).
    case other
}

/// ICMP/ICMPv6 details of a packet.
public struct ICMPInfo: Hashable, Sendable {
    /// The message type.
    public var type: UInt8
    /// The message code.
    public var code: UInt8
    /// How the flow logic treats this message.
    public var kind: ICMPMessageKind
    /// For echo request/reply, the identifier; zero otherwise.
    public var identifier: UInt16
    /// For errors, the quoted packet; nil otherwise.
    public var embedded: EmbeddedHeader?

    /// ICMP details from their parts.
    @inlinable
    public init(type: UInt8, code: UInt8, kind: ICMPMessageKind, identifier: UInt16, embedded: EmbeddedHeader?) {
        self.type = type
        self.code = code
        self.kind = kind
        self.identifier = identifier
        self.embedded = embedded
    }
}

/// The result of parsing one Ethernet frame that carries IPv4 or IPv6.
///
/// Offsets are from the start of the frame. `packetEnd` is where the IP packet ends (by its own
/// length field), which can be before the end of the frame when Ethernet padding follows.
/// For a non-first fragment and for protocols the parser does not know, `l4Offset` and
/// `payloadOffset` both point at the first byte after the IP headers and `hasTransportHeader`
/// is false.
public struct ParsedPacket: Hashable, Sendable {
    /// The flow key (see `FiveTuple` for the address and port conventions). For an ICMP error
    /// the ports are zero: the flow it belongs to comes from `icmp.embedded`.
    public var tuple: FiveTuple
    /// The 12-bit VLAN identifier of an 802.1Q tag, or nil when the frame is untagged.
    public var vlanID: UInt16?
    /// The EtherType of the IP packet (after any VLAN tag).
    public var etherType: UInt16
    /// Where the IP header starts.
    public var l3Offset: Int
    /// Where the transport header starts (after IPv4 options and IPv6 extension headers).
    public var l4Offset: Int
    /// Where the transport payload starts.
    public var payloadOffset: Int
    /// Where the IP packet ends (excludes Ethernet padding).
    public var packetEnd: Int
    /// IPv4 TTL or IPv6 hop limit, as received.
    public var hopLimit: UInt8
    /// TCP flags; empty for other protocols.
    public var tcpFlags: TCPFlags
    /// Whether the transport header was present and parsed (TCP, UDP, ICMP, ICMPv6).
    public var hasTransportHeader: Bool
    /// Whether the IPv4 header carries options (IHL > 5).
    public var hasIPv4Options: Bool
    /// Fragment details, or nil when the packet is not a fragment.
    public var fragment: FragmentInfo?
    /// ICMP/ICMPv6 details, or nil for other protocols.
    public var icmp: ICMPInfo?

    /// A parse result from its parts (the parser and tests build these).
    @inlinable
    public init(
        tuple: FiveTuple, vlanID: UInt16?, etherType: UInt16, l3Offset: Int, l4Offset: Int, payloadOffset: Int,
        packetEnd: Int, hopLimit: UInt8, tcpFlags: TCPFlags, hasTransportHeader: Bool, hasIPv4Options: Bool,
        fragment: FragmentInfo?, icmp: ICMPInfo?
    ) {
        self.tuple = tuple
        self.vlanID = vlanID
        self.etherType = etherType
        self.l3Offset = l3Offset
        self.l4Offset = l4Offset
        self.payloadOffset = payloadOffset
        self.packetEnd = packetEnd
        self.hopLimit = hopLimit
        self.tcpFlags = tcpFlags
        self.hasTransportHeader = hasTransportHeader
        self.hasIPv4Options = hasIPv4Options
        self.fragment = fragment
        self.icmp = icmp
    }

    /// The IP packet's length in bytes (header included).
    @inlinable public var ipLength: Int { packetEnd - l3Offset }
    /// Whether the packet is a fragment of any kind.
    @inlinable public var isFragment: Bool { fragment != nil }
}

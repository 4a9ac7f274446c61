// Why a frame could not be parsed. The dataplane drops such frames and counts them per reason,
// so each case names one precise cause; none carries payload, so the enum is one byte.

/// The reason a frame was rejected by `PacketParser`. Truncation is reported per layer.
public enum ParseFailure: UInt8, Error, Sendable, Hashable, CaseIterable {
    /// Shorter than an Ethernet header (14 bytes).
    case truncatedEthernet
    /// An 802.1Q tag announced but not complete.
    case truncatedVLANTag
    /// A second VLAN tag (QinQ), which this gateway does not route.
    case stackedVLANTags
    /// An EtherType other than IPv4 or IPv6 (after at most one VLAN tag).
    case unsupportedEtherType
    /// The IP version field disagrees with the EtherType.
    case ipVersionMismatch
    /// IPv4 header shorter than its minimum or than its IHL says.
    case truncatedIPv4Header
    /// IPv4 IHL below 5.
    case badIPv4HeaderLength
    /// IPv4 total length smaller than the header.
    case badIPv4TotalLength
    /// IPv4 total length runs past the end of the frame.
    case truncatedIPv4Packet
    /// Shorter than an IPv6 header (40 bytes).
    case truncatedIPv6Header
    /// IPv6 payload length runs past the end of the frame.
    case truncatedIPv6Packet
    /// An IPv6 extension header runs past the end of the packet.
    case truncatedExtensionHeader
    /// A hop-by-hop options header that is not the first header after IPv6.
    case hopByHopNotFirst
    /// More IPv6 extension headers than the parser walks (`PacketParser.maxExtensionHeaders`).
    case tooManyExtensionHeaders
    /// TCP header shorter than 20 bytes or than its data offset says.
    case truncatedTCPHeader
    /// TCP data offset below 5.
    case badTCPDataOffset
    /// UDP header shorter than 8 bytes.
    case truncatedUDPHeader
    /// UDP length field below 8 or past the end of the packet.
    case badUDPLength
    /// ICMP/ICMPv6 message shorter than 8 bytes.
    case truncatedICMPHeader
    /// An ICMP error that does not quote a complete IP header plus 8 bytes of its L4 header.
    case truncatedEmbeddedHeader
    /// An ICMP error whose quoted packet is not of the same IP version (or not IP at all).
    case badEmbeddedHeader
}

// Builds complete Ethernet frames (optional VLAN tag, IPv4 with optional NOP options or IPv6,
// TCP/UDP/ICMP/ICMPv6 with correct checksums) into a caller's buffer. Used by tests, the lab's
// probes and the benchmark generator; writing into a given buffer keeps it usable on a
// worker's UMEM frame too.

/// A description of a frame to build. A plain value; each thread builds with its own copy.
public struct FrameBuilder: Sendable {
    /// Ethernet destination.
    public var destinationMAC: MACAddress
    /// Ethernet source.
    public var sourceMAC: MACAddress
    /// When set, an 802.1Q tag with this VLAN identifier (low 12 bits) is written.
    public var vlanID: UInt16?
    /// Family, protocol, addresses and ports (for ICMP echo, `sourcePort` is the identifier).
    public var tuple: FiveTuple
    /// IPv4 TTL or IPv6 hop limit.
    public var hopLimit: UInt8
    /// TCP flags, for TCP frames.
    public var tcpFlags: TCPFlags
    /// ICMP/ICMPv6 type; nil means echo request of the tuple's family.
    public var icmpType: UInt8?
    /// ICMP/ICMPv6 code.
    public var icmpCode: UInt8
    /// Number of 4-byte words of NOP options in the IPv4 header (0...10).
    public var ipv4OptionWords: Int
    /// IPv4 identification.
    public var identification: UInt16
    /// TCP sequence and acknowledgement numbers (TLS reassembly tests set them).
    public var sequenceNumber: UInt32 = 1
    public var acknowledgementNumber: UInt32 = 0

    /// A builder for `tuple` with common defaults: hop limit 64, SYN for TCP, echo request for ICMP.
    public init(
        destinationMAC: MACAddress = MACAddress(0x02_00_00_00_00_02),
        sourceMAC: MACAddress = MACAddress(0x02_00_00_00_00_01), vlanID: UInt16? = nil, tuple: FiveTuple,
        hopLimit: UInt8 = 64, tcpFlags: TCPFlags = .syn, icmpType: UInt8? = nil, icmpCode: UInt8 = 0,
        ipv4OptionWords: Int = 0, identification: UInt16 = 0x1234
    ) {
        self.destinationMAC = destinationMAC
        self.sourceMAC = sourceMAC
        self.vlanID = vlanID
        self.tuple = tuple
        self.hopLimit = hopLimit
        self.tcpFlags = tcpFlags
        self.icmpType = icmpType
        self.icmpCode = icmpCode
        self.ipv4OptionWords = ipv4OptionWords
        self.identification = identification
    }

    private var l2Length: Int { vlanID == nil ? 14 : 18 }
    private var l3Length: Int { tuple.family == .v4 ? 20 + 4 * min(max(ipv4OptionWords, 0), 10) : 40 }
    private var l4Length: Int {
        switch tuple.protocolNumber {
        case IPProtocolNumber.tcp: return 20
        case IPProtocolNumber.udp, IPProtocolNumber.icmp, IPProtocolNumber.icmpv6: return 8
        default: return 0
        }
    }

    /// The length of the frame built with `payloadLength` bytes of payload.
    public func frameLength(payloadLength: Int) -> Int { l2Length + l3Length + l4Length + payloadLength }

    /// Writes the frame into `buffer` and returns its length, or nil when `buffer` is too small.
    public func write(into buffer: UnsafeMutableRawBufferPointer, payload: UnsafeRawBufferPointer) -> Int? {
        let total = frameLength(payloadLength: payload.count)
        guard total <= buffer.count, let base = buffer.baseAddress else { return nil }
        let l3 = l2Length
        let l4 = l3 + l3Length
        base.initializeMemory(as: UInt8.self, repeating: 0, count: l4 + l4Length)

        PacketRewriter.setEthernetAddresses(base, destination: destinationMAC, source: sourceMAC)
        let etherType = tuple.family == .v4 ? EtherType.ipv4 : EtherType.ipv6
        if let vlanID {
            base.storeBigEndian(EtherType.vlan, at: 12)
            base.storeBigEndian(vlanID & 0x0FFF, at: 14)
            base.storeBigEndian(etherType, at: 16)
        } else {
            base.storeBigEndian(etherType, at: 12)
        }

        let ipPayloadLength = l4Length + payload.count
        if tuple.family == .v4 {
            base.storeByte(0x40 | UInt8(l3Length / 4), at: l3)
            base.storeBigEndian(UInt16(truncatingIfNeeded: l3Length + ipPayloadLength), at: l3 + 2)
            base.storeBigEndian(identification, at: l3 + 4)
            base.storeByte(hopLimit, at: l3 + 8)
            base.storeByte(tuple.protocolNumber, at: l3 + 9)
            base.storeBigEndian(tuple.sourceV4, at: l3 + 12)
            base.storeBigEndian(tuple.destinationV4, at: l3 + 16)
            for option in l3 + 20..<l4 { base.storeByte(1, at: option) }  // NOP
            InternetChecksum.writeIPv4Header(buffer, l3Offset: l3)
        } else {
            base.storeBigEndian(UInt32(0x6000_0000), at: l3)
            base.storeBigEndian(UInt16(truncatingIfNeeded: ipPayloadLength), at: l3 + 4)
            base.storeByte(tuple.protocolNumber, at: l3 + 6)
            base.storeByte(hopLimit, at: l3 + 7)
            base.storeBigEndian(tuple.source, at: l3 + 8)
            base.storeBigEndian(tuple.destination, at: l3 + 24)
        }

        switch tuple.protocolNumber {
        case IPProtocolNumber.tcp:
            base.storeBigEndian(tuple.sourcePort, at: l4)
            base.storeBigEndian(tuple.destinationPort, at: l4 + 2)
            base.storeBigEndian(sequenceNumber, at: l4 + 4)
            base.storeBigEndian(acknowledgementNumber, at: l4 + 8)
            base.storeByte(5 << 4, at: l4 + 12)
            base.storeByte(tcpFlags.rawValue, at: l4 + 13)
            base.storeBigEndian(UInt16(65535), at: l4 + 14)  // window
        case IPProtocolNumber.udp:
            base.storeBigEndian(tuple.sourcePort, at: l4)
            base.storeBigEndian(tuple.destinationPort, at: l4 + 2)
            base.storeBigEndian(UInt16(truncatingIfNeeded: ipPayloadLength), at: l4 + 4)
        case IPProtocolNumber.icmp, IPProtocolNumber.icmpv6:
            base.storeByte(icmpType ?? (tuple.family == .v4 ? 8 : 128), at: l4)
            base.storeByte(icmpCode, at: l4 + 1)
            base.storeBigEndian(tuple.sourcePort, at: l4 + 4)  // echo identifier
            base.storeBigEndian(UInt16(1), at: l4 + 6)  // echo sequence
        default:
            break
        }
        if let source = payload.baseAddress, payload.count > 0 {
            (base + l4 + l4Length).copyMemory(from: source, byteCount: payload.count)
        }
        let frame = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<total])
        if let parsed = try? PacketParser.parse(UnsafeRawBufferPointer(frame)) {
            InternetChecksum.writeTransport(frame, parsed)
        }
        return total
    }

    /// The frame as a new array (allocates: for tests and tools, not the hot path).
    public func bytes(payload: [UInt8] = []) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: frameLength(payloadLength: payload.count))
        frame.withUnsafeMutableBytes { buffer in
            payload.withUnsafeBytes { payloadBytes in _ = write(into: buffer, payload: payloadBytes) }
        }
        return frame
    }
}

// The flow key: a 5-tuple put in one canonical order (lower endpoint first), so both
// directions of a flow produce the same key and the same hash, and therefore land in the same
// flow-table shard whichever queue or interface a packet arrives on. `sourceIsLow` remembers
// which endpoint sent the packet, so the table can tell the initiator from the responder.

import SluicePacket

/// The interface a packet arrived on (or leaves by).
public enum Side: UInt8, Sendable, CaseIterable {
    /// The workloads' side: flows start here.
    case inside = 0
    /// The uplink: only replies to flows that started inside are let in.
    case outside = 1

    /// The other interface.
    @inline(__always)
    public var opposite: Side { self == .inside ? .outside : .inside }
}

/// A direction-free flow key. A plain value; used by any thread.
public struct FlowKey: Hashable, Sendable {
    /// The lower endpoint's address (by address, then port).
    public var lowAddress: UInt128
    /// The higher endpoint's address.
    public var highAddress: UInt128
    /// The lower endpoint's port (echo identifier for ICMP echo, 0 for portless protocols).
    public var lowPort: UInt16
    /// The higher endpoint's port.
    public var highPort: UInt16
    /// The IP protocol number.
    public var protocolNumber: UInt8
    /// `IPFamily.rawValue`.
    public var family: UInt8

    /// The key of `tuple`, and whether the tuple's source is the key's low endpoint.
    @inline(__always)
    public static func canonical(_ tuple: FiveTuple) -> (key: FlowKey, sourceIsLow: Bool) {
        let sourceIsLow = tuple.source < tuple.destination
            || (tuple.source == tuple.destination && tuple.sourcePort <= tuple.destinationPort)
        let key = sourceIsLow
            ? FlowKey(lowAddress: tuple.source, highAddress: tuple.destination, lowPort: tuple.sourcePort,
                      highPort: tuple.destinationPort, protocolNumber: tuple.protocolNumber,
                      family: tuple.family.rawValue)
            : FlowKey(lowAddress: tuple.destination, highAddress: tuple.source, lowPort: tuple.destinationPort,
                      highPort: tuple.sourcePort, protocolNumber: tuple.protocolNumber,
                      family: tuple.family.rawValue)
        return (key, sourceIsLow)
    }

    /// The tuple of a packet sent by the low endpoint (`fromLow`) or the high one.
    public func tuple(fromLow: Bool) -> FiveTuple {
        let family: IPFamily = self.family == IPFamily.v4.rawValue ? .v4 : .v6
        return fromLow
            ? FiveTuple(family: family, protocolNumber: protocolNumber, source: lowAddress, destination: highAddress,
                        sourcePort: lowPort, destinationPort: highPort)
            : FiveTuple(family: family, protocolNumber: protocolNumber, source: highAddress, destination: lowAddress,
                        sourcePort: highPort, destinationPort: lowPort)
    }

    /// A seeded 64-bit hash. The seed is random per table, so that outsiders cannot aim many
    /// flows at one shard; the key is already symmetric, so the hash is too.
    @inline(__always)
    func hash(seed: UInt64) -> UInt64 {
        var h = seed
        h = FlowKey.mix(h ^ UInt64(truncatingIfNeeded: lowAddress))
        h = FlowKey.mix(h ^ UInt64(truncatingIfNeeded: lowAddress >> 64))
        h = FlowKey.mix(h ^ UInt64(truncatingIfNeeded: highAddress))
        h = FlowKey.mix(h ^ UInt64(truncatingIfNeeded: highAddress >> 64))
        let small = UInt64(lowPort) | UInt64(highPort) << 16 | UInt64(protocolNumber) << 32 | UInt64(family) << 40
        return FlowKey.mix(h ^ small)
    }

    /// The murmur3 64-bit finalizer: every input bit affects every output bit.
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var x = value
        x ^= x >> 33
        x = x &* 0xff51_afd7_ed55_8ccd
        x ^= x >> 33
        x = x &* 0xc4ce_b9fe_1a85_ec53
        x ^= x >> 33
        return x
    }
}

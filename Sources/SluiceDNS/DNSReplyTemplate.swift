// A cached answer kept in wire form, so a cache hit costs a copy and a few stores instead of building
// and serialising (with name compression) a message: the client's id, flags, question bytes (its
// case), the TTLs lowered by the answer's age, and an OPT record when the client sent one are patched
// into the stored bytes. The template is made once per cached answer, by serialising it and walking
// the result for the offset of every record's TTL.
import SluicePolicy
import SluiceWire

/// One cached answer's reply bytes and where to patch them.
struct DNSReplyTemplate: Sendable {
    /// The reply with id 0, no OPT record, the question as first asked; header flags are rebuilt per client.
    let bytes: [UInt8]
    /// Offset of each record's TTL field and the TTL stored there.
    let ttlOffsets: [Int]
    let ttls: [UInt32]
    /// The cached answer's AD bit (passed on only to clients that asked for DNSSEC data, RFC 6840 5.8).
    let authenticData: Bool
    /// The response code (NOERROR or NXDOMAIN: only those are cached), at most 4 bits.
    let rcode: UInt8
    /// Addresses the answer resolves the question to (through CNAMEs) with their chain TTL, for learning.
    let addresses: [(address: IPAddress, ttl: UInt32)]

    /// A template for `answer` (an upstream response to `question`); nil when its wire form does not
    /// walk back cleanly (then hits take the slower path) or its rcode needs the OPT record's bits.
    init?(_ answer: DNSMessage) {
        var message = answer
        message.edns = nil
        message.header.id = 0
        guard answer.responseCode.rawValue <= 0xF else { return nil }
        let wire = message.serialized(compressNames: true)
        var offsets: [Int] = []
        var ttls: [UInt32] = []
        var position = 12
        guard wire.count >= 12, Self.readU16(wire, 4) == 1, let nameEnd = DNSWireScan.nameEnd(wire, at: position) else {
            return nil
        }
        position = nameEnd + 4
        let records = Int(Self.readU16(wire, 6)) + Int(Self.readU16(wire, 8)) + Int(Self.readU16(wire, 10))
        for _ in 0..<records {
            guard let end = DNSWireScan.nameEnd(wire, at: position), end + 10 <= wire.count else { return nil }
            offsets.append(end + 4)
            ttls.append(UInt32(Self.readU16(wire, end + 4)) << 16 | UInt32(Self.readU16(wire, end + 6)))
            position = end + 10 + Int(Self.readU16(wire, end + 8))
        }
        guard position == wire.count else { return nil }
        bytes = wire
        ttlOffsets = offsets
        self.ttls = ttls
        authenticData = answer.header.authenticData
        rcode = UInt8(answer.responseCode.rawValue)
        var learned: [(address: IPAddress, ttl: UInt32)] = []
        if answer.responseCode == .noError, case .success(let resolution) = answer.resolveAddresses() {
            for found in resolution.addresses {
                switch found.address {
                case .a(let value): learned.append((.v4(value), found.chainTTL))
                case .aaaa(let value): learned.append((.v6(value), found.chainTTL))
                default: continue
                }
            }
        }
        addresses = learned
    }

    /// The reply to `query` (its raw bytes; `questionLength` bytes of question name start at offset 12),
    /// `age` seconds after the answer was stored, or nil when it would exceed `limit` (the caller then
    /// builds a truncated reply the slow way). `dnssecOK`: the DO bit of the client's OPT record, nil when
    /// it sent none; ours carries `udpPayloadSize` and that bit, no options.
    func reply(to query: [UInt8], header: DNSHeader, questionLength: Int, dnssecOK: Bool?, age: UInt32,
               udpPayloadSize: UInt16, limit: Int) -> [UInt8]? {
        let size = bytes.count + (dnssecOK == nil ? 0 : 11)
        guard size <= limit, questionLength > 0, 12 + questionLength <= query.count,
              12 + questionLength <= bytes.count else { return nil }
        var out = bytes
        out.reserveCapacity(size)
        out[0] = query[0]
        out[1] = query[1]
        // As DNSMessage.response builds it: QR, the query's opcode, RD and CD, RA, AD only for clients
        // that asked for DNSSEC data (DO) or AD themselves.
        let ad = authenticData && (dnssecOK == true || header.authenticData)
        let high: UInt8 = 0x80 | (header.opcode & 0xF) << 3 | (header.recursionDesired ? 1 : 0)
        let low: UInt8 = 0x80 | (ad ? 0x20 : 0) | (header.checkingDisabled ? 0x10 : 0) | rcode
        out[2] = high
        out[3] = low
        for index in 0..<questionLength { out[12 + index] = query[12 + index] }
        for (offset, ttl) in zip(ttlOffsets, ttls) {
            let effective = ttl & 0x8000_0000 != 0 ? 0 : ttl
            let aged = effective > age ? effective - age : 0
            out[offset] = UInt8(truncatingIfNeeded: aged >> 24)
            out[offset + 1] = UInt8(truncatingIfNeeded: aged >> 16)
            out[offset + 2] = UInt8(truncatingIfNeeded: aged >> 8)
            out[offset + 3] = UInt8(truncatingIfNeeded: aged)
        }
        if let dnssecOK {
            let count = Self.readU16(out, 10) &+ 1
            out[10] = UInt8(count >> 8)
            out[11] = UInt8(truncatingIfNeeded: count)
            out.append(contentsOf: [
                0, 0, 41, UInt8(udpPayloadSize >> 8), UInt8(truncatingIfNeeded: udpPayloadSize),
                0, 0, dnssecOK ? 0x80 : 0, 0, 0, 0,
            ])
        }
        return out
    }

    private static func readU16(_ bytes: [UInt8], _ at: Int) -> UInt16 {
        UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])
    }
}

// Building messages: serialization with optional name compression and UDP truncation, queries, and
// the replies the proxy sends itself (NXDOMAIN for a policy deny, SERVFAIL when every upstream failed,
// FORMERR for what it cannot parse), each echoing the query's id, question and EDNS0 as RFC 6891 asks.

extension DNSMessage {
    /// A standard query for one name and type, with an OPT record unless `edns` is nil.
    public static func query(id: UInt16, name: DNSName, type: DNSRecordType, recursionDesired: Bool = true,
                             edns: DNSEDNS? = DNSEDNS()) -> DNSMessage {
        var header = DNSHeader(id: id)
        header.recursionDesired = recursionDesired
        return DNSMessage(header: header, questions: [DNSQuestion(name: name, type: type)], edns: edns)
    }

    /// A response to this query: id, opcode, RD and CD echoed, the question echoed byte for byte (so a
    /// case-randomising client accepts it), and an OPT record if and only if the query had one, with our
    /// own payload size and the query's DO bit (RFC 3225) but none of its options.
    public func response(code: DNSResponseCode = .noError, answers: [DNSResourceRecord] = [],
                         authorities: [DNSResourceRecord] = [], recursionAvailable: Bool = true,
                         udpPayloadSize: UInt16 = 1232) -> DNSMessage {
        var replyHeader = DNSHeader(id: header.id)
        replyHeader.isResponse = true
        replyHeader.opcode = header.opcode
        replyHeader.recursionDesired = header.recursionDesired
        replyHeader.checkingDisabled = header.checkingDisabled
        replyHeader.recursionAvailable = recursionAvailable
        var replyEDNS: DNSEDNS? = nil
        if let edns {
            replyEDNS = DNSEDNS(udpPayloadSize: udpPayloadSize, version: 0, dnssecOK: edns.dnssecOK)
        }
        var reply = DNSMessage(header: replyHeader, questions: questions, answers: answers,
                               authorities: authorities, edns: replyEDNS)
        reply.responseCode = code
        return reply
    }

    /// The reply the proxy sends on its own for `code` (NXDOMAIN, SERVFAIL, REFUSED, ...): no records.
    public func errorResponse(_ code: DNSResponseCode, recursionAvailable: Bool = true,
                              udpPayloadSize: UInt16 = 1232) -> DNSMessage {
        response(code: code, recursionAvailable: recursionAvailable, udpPayloadSize: udpPayloadSize)
    }

    /// The FORMERR reply to bytes that did not parse: header only, id and opcode and RD echoed (RFC 1035
    /// leaves nothing else to trust). Nil when there is no complete header to echo or the bytes claim to
    /// be a response: answering those could start a loop between two servers, so they are dropped.
    public static func formatErrorResponse(toUnparsable bytes: [UInt8]) -> [UInt8]? {
        var cursor = WireCursor(bytes)
        guard bytes.count >= 12, let id = cursor.readU16(), let flags = cursor.readU16() else { return nil }
        let query = DNSHeader(id: id, flags: flags)
        guard !query.isResponse else { return nil }
        var header = DNSHeader(id: id)
        header.isResponse = true
        header.opcode = query.opcode
        header.recursionDesired = query.recursionDesired
        header.rcodeLow = UInt8(DNSResponseCode.formatError.rawValue)
        return DNSMessage(header: header).serialized()
    }

    /// The wire form. With `compressNames`, owner names, question names and CNAME targets point back to
    /// earlier occurrences (case-insensitively, as servers do). When the result would exceed `maxSize`
    /// (the client's UDP payload size), the records are left out and TC is set, so the client retries
    /// over TCP (RFC 2181 section 9); the question and the OPT record stay.
    public func serialized(compressNames: Bool = true, maxSize: Int = 65_535) -> [UInt8] {
        let full = write(includeRecords: true, compressNames: compressNames)
        if full.count <= maxSize { return full }
        var truncated = self
        truncated.header.isTruncated = true
        return truncated.write(includeRecords: false, compressNames: compressNames)
    }

    private func write(includeRecords: Bool, compressNames: Bool) -> [UInt8] {
        var writer = DNSWriter(compress: compressNames)
        let maxCount = Int(UInt16.max)
        let qd = questions.prefix(maxCount)
        let an = includeRecords ? answers.prefix(maxCount) : []
        let ns = includeRecords ? authorities.prefix(maxCount) : []
        let ar = includeRecords ? additionals.prefix(maxCount - (edns == nil ? 0 : 1)) : []
        writer.bytes.appendU16(header.id)
        writer.bytes.appendU16(header.flags)
        writer.bytes.appendU16(UInt16(qd.count))
        writer.bytes.appendU16(UInt16(an.count))
        writer.bytes.appendU16(UInt16(ns.count))
        writer.bytes.appendU16(UInt16(ar.count + (edns == nil ? 0 : 1)))
        for question in qd {
            writer.writeName(question.name)
            writer.bytes.appendU16(question.type.rawValue)
            writer.bytes.appendU16(question.dnsClass.rawValue)
        }
        for record in an { writer.writeRecord(record) }
        for record in ns { writer.writeRecord(record) }
        for record in ar { writer.writeRecord(record) }
        if let edns {
            var options: [UInt8] = []
            for option in edns.options {
                options.appendU16(option.code)
                options.appendU16(UInt16(truncatingIfNeeded: option.data.count))
                options.append(contentsOf: option.data)
            }
            let ttl = UInt32(edns.extendedRCodeHigh) << 24 | UInt32(edns.version) << 16
                | (edns.dnssecOK ? 0x8000 : 0) | UInt32(edns.reservedFlags & 0x7FFF)
            let payloadSize = DNSClass(rawValue: edns.udpPayloadSize)
            writer.writeRecord(DNSResourceRecord(name: .root, type: .opt, dnsClass: payloadSize, ttl: ttl,
                                                 data: .opaque(options)))
        }
        return writer.bytes
    }
}

/// Accumulates a message and remembers where each name suffix was written, for compression.
private struct DNSWriter {
    var bytes: [UInt8] = []
    let compress: Bool
    /// Case-folded wire suffix → offset of its first occurrence (only offsets a pointer can reach).
    var suffixes: [[UInt8]: Int] = [:]

    init(compress: Bool) {
        self.compress = compress
        bytes.reserveCapacity(512)
    }

    mutating func writeName(_ name: DNSName) {
        let wire = name.wireBytes
        guard compress else {
            bytes.append(contentsOf: wire)
            return
        }
        let folded = name.lowercasedWire
        var index = 0
        while index < wire.count, wire[index] != 0 {
            let suffix = Array(folded[index...])
            if let offset = suffixes[suffix] {
                bytes.appendU16(0xC000 | UInt16(offset))
                return
            }
            if bytes.count < 0x4000 { suffixes[suffix] = bytes.count }
            let count = Int(wire[index])
            bytes.append(contentsOf: wire[index...(index + count)])
            index += 1 + count
        }
        bytes.append(0)
    }

    mutating func writeRecord(_ record: DNSResourceRecord) {
        writeName(record.name)
        bytes.appendU16(record.type.rawValue)
        bytes.appendU16(record.dnsClass.rawValue)
        bytes.appendU32(record.ttl)
        let lengthAt = bytes.count
        bytes.appendU16(0)
        switch record.data {
        case .a(let address):
            bytes.appendU32(address)
        case .aaaa(let address):
            for shift in stride(from: 120, through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: address >> UInt128(shift)))
            }
        case .cname(let target):
            writeName(target)
        case .opaque(let data):
            // RDLENGTH is 16 bits; longer data cannot be expressed and is cut rather than trapping.
            bytes.append(contentsOf: data.prefix(Int(UInt16.max)))
        }
        bytes.setU16(UInt16(truncatingIfNeeded: bytes.count - lengthAt - 2), at: lengthAt)
    }
}

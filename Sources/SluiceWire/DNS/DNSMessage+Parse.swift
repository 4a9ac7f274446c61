// Total parsing of a DNS message from its bytes. Input is a `[UInt8]` holding exactly one message (the
// proxy copies it out of the datagram, or out of a TCP stream after the 2-byte length prefix); results
// own their data, so they outlive the buffer. Every malformed input ends in a `DNSParseError`, never a trap.

extension DNSMessage {
    /// Parses one complete message. Rejects anything the proxy should not trust: truncation anywhere,
    /// counts larger than the data, name compression abuse, malformed A/AAAA/CNAME data, more than one
    /// OPT record or one outside the additional section, and bytes left over after the last record.
    public init(parsing bytes: [UInt8]) throws(DNSParseError) {
        guard bytes.count <= 65_535 else { throw DNSParseError(.messageTooLarge, at: 65_535) }
        var cursor = WireCursor(bytes)
        guard let id = cursor.readU16(), let flags = cursor.readU16(), let qdCount = cursor.readU16(),
              let anCount = cursor.readU16(), let nsCount = cursor.readU16(), let arCount = cursor.readU16()
        else { throw DNSParseError(.truncated, at: bytes.count) }
        header = DNSHeader(id: id, flags: flags)

        var position = cursor.position
        questions = []
        for _ in 0..<Int(qdCount) {
            let (name, end) = try DNSName.decode(from: bytes, at: position)
            var fields = WireCursor(bytes, from: end)
            guard let type = fields.readU16(), let dnsClass = fields.readU16() else {
                throw DNSParseError(.truncated, at: end)
            }
            questions.append(DNSQuestion(name: name, type: DNSRecordType(rawValue: type),
                                         dnsClass: DNSClass(rawValue: dnsClass)))
            position = fields.position
        }

        var edns: DNSEDNS? = nil
        func section(_ count: UInt16, isAdditional: Bool) throws(DNSParseError) -> [DNSResourceRecord] {
            var records: [DNSResourceRecord] = []
            for _ in 0..<Int(count) {
                let start = position
                let (record, end) = try DNSMessage.parseRecord(bytes, at: position)
                position = end
                guard record.type == .opt else {
                    records.append(record)
                    continue
                }
                guard isAdditional, record.name.isRoot else { throw DNSParseError(.misplacedOPT, at: start) }
                guard edns == nil else { throw DNSParseError(.multipleOPT, at: start) }
                edns = try DNSMessage.parseOPT(record, at: start)
            }
            return records
        }
        answers = try section(anCount, isAdditional: false)
        authorities = try section(nsCount, isAdditional: false)
        additionals = try section(arCount, isAdditional: true)
        self.edns = edns
        guard position == bytes.count else { throw DNSParseError(.trailingBytes, at: position) }
    }

    /// The RFC 1035 types whose RDATA may hold compressed names, as (names before the fixed tail, fixed
    /// tail bytes, names after it). Only these are decompressed; other types stay byte-for-byte.
    private static func compressedNameLayout(_ type: DNSRecordType) -> (leadingBytes: Int, names: Int, tail: Int)? {
        switch type.rawValue {
        case 2, 3, 4, 7, 8, 9, 12: (0, 1, 0)      // NS, MD, MF, MB, MG, MR, PTR: one name
        case 6: (0, 2, 20)                         // SOA: MNAME, RNAME, five 32-bit integers
        case 14: (0, 2, 0)                         // MINFO: RMAILBX, EMAILBX
        case 15: (2, 1, 0)                         // MX: preference, exchange
        default: nil
        }
    }

    /// Parses one resource record at `start`; returns it and the offset after it.
    static func parseRecord(_ bytes: [UInt8], at start: Int) throws(DNSParseError) -> (DNSResourceRecord, Int) {
        let (name, nameEnd) = try DNSName.decode(from: bytes, at: start)
        var fields = WireCursor(bytes, from: nameEnd)
        guard let rawType = fields.readU16(), let rawClass = fields.readU16(), let ttl = fields.readU32(),
              let rdLength = fields.readU16()
        else { throw DNSParseError(.truncated, at: nameEnd) }
        let dataStart = fields.position
        guard let dataRange = fields.readRange(Int(rdLength)) else { throw DNSParseError(.truncated, at: dataStart) }
        let type = DNSRecordType(rawValue: rawType)
        let data: DNSRecordData
        switch type {
        case .a:
            guard dataRange.count == 4 else { throw DNSParseError(.badRecordData, at: dataStart) }
            var rd = WireCursor(bytes, from: dataRange.lowerBound, to: dataRange.upperBound)
            data = .a(rd.readU32() ?? 0)
        case .aaaa:
            guard dataRange.count == 16 else { throw DNSParseError(.badRecordData, at: dataStart) }
            var value: UInt128 = 0
            for byte in bytes[dataRange] { value = value << 8 | UInt128(byte) }
            data = .aaaa(value)
        case .cname:
            let (target, end) = try DNSName.decode(from: bytes, at: dataStart)
            guard end == dataRange.upperBound else { throw DNSParseError(.badRecordData, at: dataStart) }
            data = .cname(target)
        default:
            if let layout = compressedNameLayout(type) {
                data = .opaque(try decompressedRData(bytes, range: dataRange, layout: layout))
            } else {
                data = .opaque(Array(bytes[dataRange]))
            }
        }
        let record = DNSResourceRecord(name: name, type: type, dnsClass: DNSClass(rawValue: rawClass), ttl: ttl,
                                       data: data)
        return (record, dataRange.upperBound)
    }

    private static func decompressedRData(
        _ bytes: [UInt8], range: Range<Int>, layout: (leadingBytes: Int, names: Int, tail: Int)
    ) throws(DNSParseError) -> [UInt8] {
        var out: [UInt8] = []
        guard range.count >= layout.leadingBytes else { throw DNSParseError(.badRecordData, at: range.lowerBound) }
        out.append(contentsOf: bytes[range.lowerBound..<(range.lowerBound + layout.leadingBytes)])
        var position = range.lowerBound + layout.leadingBytes
        for _ in 0..<layout.names {
            // A name that starts inside the RDATA must also end inside it.
            guard position < range.upperBound else { throw DNSParseError(.badRecordData, at: position) }
            let (name, end) = try DNSName.decode(from: bytes, at: position)
            guard end <= range.upperBound else { throw DNSParseError(.badRecordData, at: position) }
            out.append(contentsOf: name.wireBytes)
            position = end
        }
        guard range.upperBound - position == layout.tail else { throw DNSParseError(.badRecordData, at: position) }
        out.append(contentsOf: bytes[position..<range.upperBound])
        return out
    }

    /// Turns a parsed OPT record into its EDNS fields; the options must tile the RDATA exactly.
    private static func parseOPT(_ record: DNSResourceRecord, at offset: Int) throws(DNSParseError) -> DNSEDNS {
        var edns = DNSEDNS(udpPayloadSize: record.dnsClass.rawValue)
        edns.extendedRCodeHigh = UInt8(truncatingIfNeeded: record.ttl >> 24)
        edns.version = UInt8(truncatingIfNeeded: record.ttl >> 16)
        edns.dnssecOK = record.ttl & 0x8000 != 0
        edns.reservedFlags = UInt16(truncatingIfNeeded: record.ttl & 0x7FFF)
        guard case .opaque(let rdata) = record.data else { return edns }
        var cursor = WireCursor(rdata)
        while !cursor.isAtEnd {
            guard let code = cursor.readU16(), let length = cursor.readU16(),
                  let data = cursor.readBytes(Int(length))
            else { throw DNSParseError(.badEDNSOption, at: offset) }
            edns.options.append(DNSEDNSOption(code: code, data: data))
        }
        return edns
    }
}

// A check of a DNS message on its wire bytes that builds nothing: the proxy's cache-miss path validates
// every upstream reply, matches it to its query and learns its addresses without parsing it into a
// DNSMessage (names, records and arrays per reply), then passes the bytes on. The scan accepts exactly
// the messages `DNSMessage(parsing:)` accepts (the same name, record, OPT and trailing-byte rules, which
// DNSWireScanTests check against the parser on mutated messages), so the fast path trusts nothing the
// parser would have refused.

/// The header facts and section offsets of one structurally valid message.
public struct DNSWireScan: Sendable, Equatable {
    /// The header's id.
    public let id: UInt16
    /// The header's flags word (QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE).
    public let flags: UInt16
    /// Questions, answers, authority and additional records.
    public let questionCount: Int, answerCount: Int, authorityCount: Int, additionalCount: Int
    /// The offset of the first answer record (after the question section).
    public let answerStart: Int
    /// Whether the message carries an OPT record (EDNS0).
    public let hasOPT: Bool
    /// The OPT record's extended rcode bits (its TTL's high byte), 0 without OPT.
    public let extendedRCodeHigh: UInt8
    /// The smallest TTL of the answer records (as `Record.ttl` reads them), UInt32.max without answers:
    /// read on the scan's own walk, so the cache's TTL costs no second one.
    public let minimumAnswerTTL: UInt32
    /// Whether any answer record is a CNAME (without one, resolving follows no chain).
    public let answersHaveCNAME: Bool

    /// QR: a response.
    public var isResponse: Bool { flags & 0x8000 != 0 }
    /// The opcode.
    public var opcode: UInt8 { UInt8(truncatingIfNeeded: flags >> 11) & 0xF }
    /// TC: the answer did not fit.
    public var isTruncated: Bool { flags & 0x0200 != 0 }
    /// The full response code (with the OPT record's extended bits), as `DNSMessage.responseCode`.
    public var responseCode: DNSResponseCode {
        DNSResponseCode(rawValue: UInt16(extendedRCodeHigh) << 4 | (flags & 0xF))
    }

    /// Scans `bytes`; nil exactly when `DNSMessage(parsing: bytes)` would throw.
    public init?(_ bytes: [UInt8]) {
        guard bytes.count >= 12, bytes.count <= 65_535 else { return nil }
        id = Self.u16(bytes, 0)
        flags = Self.u16(bytes, 2)
        questionCount = Int(Self.u16(bytes, 4))
        answerCount = Int(Self.u16(bytes, 6))
        authorityCount = Int(Self.u16(bytes, 8))
        additionalCount = Int(Self.u16(bytes, 10))
        var position = 12
        for _ in 0..<questionCount {
            guard let end = Self.nameEnd(bytes, at: position), end + 4 <= bytes.count else { return nil }
            position = end + 4
        }
        answerStart = position
        var opt = false
        var extended: UInt8 = 0
        var minimumTTL = UInt32.max
        var cname = false
        for section in 0..<3 {
            let isAdditional = section == 2
            for _ in 0..<(section == 0 ? answerCount : section == 1 ? authorityCount : additionalCount) {
                let start = position
                guard let nameEnd = Self.nameEnd(bytes, at: position), nameEnd + 10 <= bytes.count else { return nil }
                let type = Self.u16(bytes, nameEnd)
                let dataStart = nameEnd + 10
                let dataEnd = dataStart + Int(Self.u16(bytes, nameEnd + 8))
                guard dataEnd <= bytes.count, Self.recordDataIsValid(bytes, type: type, from: dataStart, to: dataEnd)
                else { return nil }
                if type == DNSRecordType.opt.rawValue {
                    // In the additional section, owner the root name, only one, options tiling the data.
                    guard isAdditional, bytes[start] == 0, !opt else { return nil }
                    var option = dataStart
                    while option < dataEnd {
                        guard option + 4 <= dataEnd else { return nil }
                        option += 4 + Int(Self.u16(bytes, option + 2))
                        guard option <= dataEnd else { return nil }
                    }
                    opt = true
                    extended = bytes[nameEnd + 4]
                }
                if section == 0 {
                    let ttl = UInt32(Self.u16(bytes, nameEnd + 4)) << 16 | UInt32(Self.u16(bytes, nameEnd + 6))
                    minimumTTL = min(minimumTTL, ttl & 0x8000_0000 != 0 ? 0 : ttl)
                    if type == DNSRecordType.cname.rawValue { cname = true }
                }
                position = dataEnd
            }
        }
        guard position == bytes.count else { return nil }
        hasOPT = opt
        extendedRCodeHigh = extended
        minimumAnswerTTL = minimumTTL
        answersHaveCNAME = cname
    }

    /// Whether this message, `bytes`, answers the query `query` (its wire bytes; its one question starts
    /// at offset 12) sent with id `queryID` (nil: the id in `query`): a response with that id, the
    /// query's opcode and exactly its question (the name compared case-insensitively), as
    /// `dnsReply(_:matches:)` demands of parsed messages.
    public func answers(_ query: [UInt8], id queryID: UInt16? = nil, in bytes: [UInt8]) -> Bool {
        guard isResponse, query.count >= 12, id == queryID ?? Self.u16(query, 0),
              opcode == UInt8(truncatingIfNeeded: Self.u16(query, 2) >> 11) & 0xF,
              questionCount == 1, Self.u16(query, 4) == 1,
              let queryNameEnd = Self.nameEnd(query, at: 12), queryNameEnd + 4 <= query.count,
              let nameEnd = Self.nameEnd(bytes, at: 12),
              Self.namesEqual(bytes, 12, query, 12) else { return false }
        // QTYPE and QCLASS.
        return bytes[nameEnd] == query[queryNameEnd] && bytes[nameEnd + 1] == query[queryNameEnd + 1]
            && bytes[nameEnd + 2] == query[queryNameEnd + 2] && bytes[nameEnd + 3] == query[queryNameEnd + 3]
    }

    /// Calls `body` with every A and AAAA answer the question resolves to through CNAMEs (class IN only,
    /// only records reachable from the question name), with its chain TTL: exactly what
    /// `DNSMessage.resolveAddresses()` finds, in the same order. False (and no calls) when that fails:
    /// no question, conflicting CNAMEs, a loop or a chain longer than `maxChainLength`.
    @discardableResult
    public func forEachResolvedAddress(in bytes: [UInt8], maxChainLength: Int = 16,
                                       _ body: (DNSRecordData, UInt32) -> Void) -> Bool {
        guard questionCount >= 1 else { return false }
        var current = 12  // offset of the name being followed
        var seen: [Int] = []  // names passed through (allocated only when there is a CNAME)
        var links = 0
        var minimumTTL = UInt32.max
        while answersHaveCNAME {
            var target: Int? = nil
            var targetTTL = UInt32.max
            var conflict = false
            forEachAnswer(bytes) { nameAt, type, dnsClass, ttl, dataStart, _ in
                guard dnsClass == DNSClass.internet.rawValue, type == DNSRecordType.cname.rawValue,
                      Self.namesEqual(bytes, nameAt, bytes, current) else { return }
                if let existing = target, !Self.namesEqual(bytes, existing, bytes, dataStart) { conflict = true }
                if target == nil { target = dataStart }
                targetTTL = min(targetTTL, ttl)
            }
            guard !conflict else { return false }
            guard let next = target else { break }
            guard links < maxChainLength else { return false }
            if seen.isEmpty { seen.append(current) }
            if seen.contains(where: { Self.namesEqual(bytes, $0, bytes, next) }) { return false }
            seen.append(next)
            links += 1
            minimumTTL = min(minimumTTL, targetTTL)
            current = next
        }
        forEachAnswer(bytes) { nameAt, type, dnsClass, ttl, dataStart, _ in
            guard dnsClass == DNSClass.internet.rawValue,
                  type == DNSRecordType.a.rawValue || type == DNSRecordType.aaaa.rawValue,
                  Self.namesEqual(bytes, nameAt, bytes, current) else { return }
            let data: DNSRecordData
            if type == DNSRecordType.a.rawValue {
                data = .a(UInt32(Self.u16(bytes, dataStart)) << 16 | UInt32(Self.u16(bytes, dataStart + 2)))
            } else {
                var value: UInt128 = 0
                for index in dataStart..<(dataStart + 16) { value = value << 8 | UInt128(bytes[index]) }
                data = .aaaa(value)
            }
            body(data, min(ttl, minimumTTL))
        }
        return true
    }

    /// One record as `forEachRecord` finds it.
    public struct Record {
        /// 0 answer, 1 authority, 2 additional.
        public let section: Int
        /// Offset of the owner name.
        public let nameAt: Int
        public let type: UInt16
        public let dnsClass: UInt16
        /// The TTL to honour (zero when the top bit is set, RFC 2181 section 8); an OPT record's flags.
        public let ttl: UInt32
        /// RDATA: `dataStart..<dataEnd`.
        public let dataStart: Int
        public let dataEnd: Int
    }

    /// Calls `body` with every record of the answer, authority and additional sections (the OPT record
    /// included), in order. `bytes` must be the message this scan was made of.
    public func forEachRecord(in bytes: [UInt8], _ body: (Record) -> Void) {
        walkRecords(bytes, count: answerCount + authorityCount + additionalCount, body)
    }

    /// Walks the answer section only.
    private func forEachAnswer(_ bytes: [UInt8], _ body: (Int, UInt16, UInt16, UInt32, Int, Int) -> Void) {
        walkRecords(bytes, count: answerCount) { body($0.nameAt, $0.type, $0.dnsClass, $0.ttl, $0.dataStart, $0.dataEnd) }
    }

    private func walkRecords(_ bytes: [UInt8], count: Int, _ body: (Record) -> Void) {
        var position = answerStart
        for index in 0..<count {
            // Scanned already: every name and length is in bounds.
            guard let nameEnd = Self.nameEnd(bytes, at: position) else { return }
            let rawTTL = UInt32(Self.u16(bytes, nameEnd + 4)) << 16 | UInt32(Self.u16(bytes, nameEnd + 6))
            let dataStart = nameEnd + 10
            let dataEnd = dataStart + Int(Self.u16(bytes, nameEnd + 8))
            let section = index < answerCount ? 0 : index < answerCount + authorityCount ? 1 : 2
            body(Record(section: section, nameAt: position, type: Self.u16(bytes, nameEnd),
                        dnsClass: Self.u16(bytes, nameEnd + 2), ttl: rawTTL & 0x8000_0000 != 0 ? 0 : rawTTL,
                        dataStart: dataStart, dataEnd: dataEnd))
            position = dataEnd
        }
    }

    static func u16(_ bytes: [UInt8], _ at: Int) -> UInt16 {
        UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])
    }

    /// The RDATA rules of `DNSMessage.parseRecord`: A 4 bytes, AAAA 16, a CNAME one name filling the data,
    /// the RFC 1035 types with compressed names those names inside the data and the fixed tail exact.
    static func recordDataIsValid(_ bytes: [UInt8], type: UInt16, from start: Int, to end: Int) -> Bool {
        switch type {
        case DNSRecordType.a.rawValue: return end - start == 4
        case DNSRecordType.aaaa.rawValue: return end - start == 16
        case DNSRecordType.cname.rawValue: return nameEnd(bytes, at: start) == end
        default:
            let layout: (leading: Int, names: Int, tail: Int)
            switch type {
            case 2, 3, 4, 7, 8, 9, 12: layout = (0, 1, 0)
            case 6: layout = (0, 2, 20)
            case 14: layout = (0, 2, 0)
            case 15: layout = (2, 1, 0)
            default: return true
            }
            guard end - start >= layout.leading else { return false }
            var position = start + layout.leading
            for _ in 0..<layout.names {
                guard position < end, let after = nameEnd(bytes, at: position), after <= end else { return false }
                position = after
            }
            return end - position == layout.tail
        }
    }

    /// The offset after the name at `start`, or nil where `DNSName.decode` would throw (the same rules:
    /// bounds, length 255 with the root label, at most 16 pointers, each to before where its run began).
    public static func nameEnd(_ bytes: [UInt8], at start: Int) -> Int? {
        var position = start
        var runStart = start
        var endAfterName: Int? = nil
        var pointers = 0
        var length = 0  // wire length so far, without the root label
        while true {
            guard position >= 0, position < bytes.count else { return nil }
            let label = bytes[position]
            switch label >> 6 {
            case 0:
                if label == 0 { return endAfterName ?? position + 1 }
                let count = Int(label)
                guard position + 1 + count <= bytes.count, length + 1 + count + 1 <= DNSName.maxWireLength else {
                    return nil
                }
                length += 1 + count
                position += 1 + count
            case 3:
                guard position + 1 < bytes.count else { return nil }
                let target = Int(label & 0x3F) << 8 | Int(bytes[position + 1])
                if endAfterName == nil { endAfterName = position + 2 }
                pointers += 1
                guard pointers <= DNSName.maxPointers, target >= 12, target < bytes.count, target < position,
                      target < runStart else { return nil }
                runStart = target
                position = target
            default:
                return nil
            }
        }
    }

    /// Whether the valid names at `a` in `x` and at `b` in `y` are equal, ASCII case-insensitively.
    public static func namesEqual(_ x: [UInt8], _ a: Int, _ y: [UInt8], _ b: Int) -> Bool {
        var i = a, j = b
        var steps = 0
        while steps < 600 {  // valid names end long before this; a guard against misuse
            steps += 1
            guard i < x.count, j < y.count else { return false }
            // Follow a pointer on either side first.
            if x[i] & 0xC0 == 0xC0 {
                guard i + 1 < x.count else { return false }
                i = Int(x[i] & 0x3F) << 8 | Int(x[i + 1])
                continue
            }
            if y[j] & 0xC0 == 0xC0 {
                guard j + 1 < y.count else { return false }
                j = Int(y[j] & 0x3F) << 8 | Int(y[j + 1])
                continue
            }
            let count = Int(x[i])
            guard count == Int(y[j]) else { return false }
            if count == 0 { return true }
            guard i + count < x.count, j + count < y.count else { return false }
            for offset in 1...count {
                let p = x[i + offset], q = y[j + offset]
                if p != q, (p >= 0x41 && p <= 0x5A ? p | 0x20 : p) != (q >= 0x41 && q <= 0x5A ? q | 0x20 : q) {
                    return false
                }
            }
            i += 1 + count
            j += 1 + count
        }
        return false
    }
}

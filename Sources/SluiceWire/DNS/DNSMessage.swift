// The DNS message model (RFC 1035 section 4, RFC 3596, RFC 6891): header, questions, records and the
// EDNS0 pseudo-record, as plain values. Parsing lives in DNSMessage+Parse.swift, building and the
// canned error replies in DNSMessage+Build.swift, CNAME chain following in DNSMessage+CNAMEChain.swift.

/// A resource record type (RFC 1035 section 3.2.2 and later registrations).
public struct DNSRecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 16-bit TYPE value.
    public var rawValue: UInt16
    /// Wraps a TYPE value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// IPv4 host address.
    public static let a = DNSRecordType(rawValue: 1)
    /// Authoritative name server.
    public static let ns = DNSRecordType(rawValue: 2)
    /// Canonical name (alias).
    public static let cname = DNSRecordType(rawValue: 5)
    /// Start of authority.
    public static let soa = DNSRecordType(rawValue: 6)
    /// Domain name pointer.
    public static let ptr = DNSRecordType(rawValue: 12)
    /// Mail exchange.
    public static let mx = DNSRecordType(rawValue: 15)
    /// Text strings.
    public static let txt = DNSRecordType(rawValue: 16)
    /// IPv6 host address (RFC 3596).
    public static let aaaa = DNSRecordType(rawValue: 28)
    /// Service locator.
    public static let srv = DNSRecordType(rawValue: 33)
    /// EDNS0 pseudo-record (RFC 6891).
    public static let opt = DNSRecordType(rawValue: 41)
    /// Service binding (RFC 9460).
    public static let svcb = DNSRecordType(rawValue: 64)
    /// HTTPS service binding (RFC 9460).
    public static let https = DNSRecordType(rawValue: 65)
    /// Query for all records.
    public static let any = DNSRecordType(rawValue: 255)

    /// Mnemonic for the common types, "TYPEnnn" otherwise (RFC 3597).
    public var description: String {
        switch self {
        case .a: "A"
        case .ns: "NS"
        case .cname: "CNAME"
        case .soa: "SOA"
        case .ptr: "PTR"
        case .mx: "MX"
        case .txt: "TXT"
        case .aaaa: "AAAA"
        case .srv: "SRV"
        case .opt: "OPT"
        case .svcb: "SVCB"
        case .https: "HTTPS"
        case .any: "ANY"
        default: "TYPE\(rawValue)"
        }
    }
}

/// A resource record class; in practice always IN.
public struct DNSClass: RawRepresentable, Hashable, Sendable {
    /// The 16-bit CLASS value.
    public var rawValue: UInt16
    /// Wraps a CLASS value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// The Internet.
    public static let internet = DNSClass(rawValue: 1)
    /// Chaos (used for server identification queries).
    public static let chaos = DNSClass(rawValue: 3)
    /// Any class (queries only).
    public static let any = DNSClass(rawValue: 255)
}

/// A response code. Up to 12 bits: the low 4 live in the header, the high 8 in the OPT record.
public struct DNSResponseCode: RawRepresentable, Hashable, Sendable {
    /// The (extended) RCODE value.
    public var rawValue: UInt16
    /// Wraps an RCODE value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// No error.
    public static let noError = DNSResponseCode(rawValue: 0)
    /// The query could not be interpreted.
    public static let formatError = DNSResponseCode(rawValue: 1)
    /// The server failed (here: every upstream failed).
    public static let serverFailure = DNSResponseCode(rawValue: 2)
    /// The name does not exist (here also: denied by policy).
    public static let nameError = DNSResponseCode(rawValue: 3)
    /// The kind of query is not supported.
    public static let notImplemented = DNSResponseCode(rawValue: 4)
    /// Refused for policy reasons.
    public static let refused = DNSResponseCode(rawValue: 5)
    /// Unsupported EDNS version (RFC 6891; needs an OPT record to express).
    public static let badVersion = DNSResponseCode(rawValue: 16)
}

/// The fixed 12-byte header, without the four counts (those follow from the sections' lengths).
public struct DNSHeader: Hashable, Sendable {
    /// Query identifier, echoed in the response.
    public var id: UInt16
    /// QR: this is a response.
    public var isResponse: Bool
    /// OPCODE (4 bits); 0 is a standard query.
    public var opcode: UInt8
    /// AA: authoritative answer.
    public var isAuthoritative: Bool
    /// TC: truncated; the client should retry over TCP.
    public var isTruncated: Bool
    /// RD: recursion desired.
    public var recursionDesired: Bool
    /// RA: recursion available.
    public var recursionAvailable: Bool
    /// Z: the reserved bit, kept so a message round-trips exactly.
    public var reservedBit: Bool
    /// AD: authentic data (RFC 4035).
    public var authenticData: Bool
    /// CD: checking disabled (RFC 4035).
    public var checkingDisabled: Bool
    /// The low 4 bits of the RCODE; see `DNSMessage.responseCode` for the extended value.
    public var rcodeLow: UInt8

    /// A header with every flag clear.
    public init(id: UInt16) {
        self.id = id
        isResponse = false
        opcode = 0
        isAuthoritative = false
        isTruncated = false
        recursionDesired = false
        recursionAvailable = false
        reservedBit = false
        authenticData = false
        checkingDisabled = false
        rcodeLow = 0
    }

    /// Decodes the flags word (the 16 bits after the id).
    public init(id: UInt16, flags: UInt16) {
        self.id = id
        isResponse = flags & 0x8000 != 0
        opcode = UInt8((flags >> 11) & 0xF)
        isAuthoritative = flags & 0x0400 != 0
        isTruncated = flags & 0x0200 != 0
        recursionDesired = flags & 0x0100 != 0
        recursionAvailable = flags & 0x0080 != 0
        reservedBit = flags & 0x0040 != 0
        authenticData = flags & 0x0020 != 0
        checkingDisabled = flags & 0x0010 != 0
        rcodeLow = UInt8(flags & 0xF)
    }

    /// The flags word as it goes on the wire.
    public var flags: UInt16 {
        var value = UInt16(opcode & 0xF) << 11 | UInt16(rcodeLow & 0xF)
        if isResponse { value |= 0x8000 }
        if isAuthoritative { value |= 0x0400 }
        if isTruncated { value |= 0x0200 }
        if recursionDesired { value |= 0x0100 }
        if recursionAvailable { value |= 0x0080 }
        if reservedBit { value |= 0x0040 }
        if authenticData { value |= 0x0020 }
        if checkingDisabled { value |= 0x0010 }
        return value
    }
}

/// One entry of the question section.
public struct DNSQuestion: Hashable, Sendable {
    /// The name asked about, case preserved.
    public var name: DNSName
    /// QTYPE.
    public var type: DNSRecordType
    /// QCLASS.
    public var dnsClass: DNSClass

    /// A question; class IN unless told otherwise.
    public init(name: DNSName, type: DNSRecordType, dnsClass: DNSClass = .internet) {
        self.name = name
        self.type = type
        self.dnsClass = dnsClass
    }
}

/// Record data: addresses and aliases decoded, everything else kept as bytes.
public enum DNSRecordData: Hashable, Sendable {
    /// An IPv4 address, host order (the same representation as SluicePolicy's `IPAddress.v4`).
    case a(UInt32)
    /// An IPv6 address, host order (the same representation as SluicePolicy's `IPAddress.v6`).
    case aaaa(UInt128)
    /// The canonical name a CNAME points to.
    case cname(DNSName)
    /// Any other type's RDATA. For the RFC 1035 types whose RDATA holds compressible names (NS, MD, MF,
    /// SOA, MB, MG, MR, PTR, MINFO, MX; RFC 3597 section 4) the names are decompressed first, so these
    /// bytes stay meaningful outside the message they came from and can be written into another one.
    case opaque([UInt8])
}

/// One resource record of the answer, authority or additional section.
public struct DNSResourceRecord: Hashable, Sendable {
    /// Owner name, case preserved.
    public var name: DNSName
    /// TYPE.
    public var type: DNSRecordType
    /// CLASS.
    public var dnsClass: DNSClass
    /// TTL in seconds as sent. RFC 2181 section 8 says a value with the top bit set means zero;
    /// `effectiveTTL` applies that.
    public var ttl: UInt32
    /// The decoded RDATA.
    public var data: DNSRecordData

    /// A record; class IN unless told otherwise.
    public init(name: DNSName, type: DNSRecordType, dnsClass: DNSClass = .internet, ttl: UInt32,
                data: DNSRecordData) {
        self.name = name
        self.type = type
        self.dnsClass = dnsClass
        self.ttl = ttl
        self.data = data
    }

    /// The TTL to honour: zero when the top bit is set (RFC 2181 section 8).
    public var effectiveTTL: UInt32 { ttl & 0x8000_0000 != 0 ? 0 : ttl }
}

/// One EDNS option (RFC 6891 section 6.1.2), kept opaque so the proxy can pass it through.
public struct DNSEDNSOption: Hashable, Sendable {
    /// OPTION-CODE (e.g. 10 for cookies, 8 for client subnet, 12 for padding).
    public var code: UInt16
    /// OPTION-DATA.
    public var data: [UInt8]

    /// An option.
    public init(code: UInt16, data: [UInt8]) {
        self.code = code
        self.data = data
    }
}

/// The EDNS0 OPT pseudo-record's contents (RFC 6891 section 6.1.3).
public struct DNSEDNS: Hashable, Sendable {
    /// The requester's UDP payload size (the OPT record's CLASS). Values below 512 mean 512.
    public var udpPayloadSize: UInt16
    /// The upper 8 bits of the extended RCODE.
    public var extendedRCodeHigh: UInt8
    /// EDNS version; only 0 is defined.
    public var version: UInt8
    /// DO: DNSSEC answer OK (RFC 3225).
    public var dnssecOK: Bool
    /// The remaining 15 Z flag bits, kept so a message round-trips exactly.
    public var reservedFlags: UInt16
    /// The options in the order sent.
    public var options: [DNSEDNSOption]

    /// An OPT record; 1232 bytes is the size the DNS flag day 2020 settled on to avoid fragmentation.
    public init(udpPayloadSize: UInt16 = 1232, version: UInt8 = 0, dnssecOK: Bool = false,
                options: [DNSEDNSOption] = []) {
        self.udpPayloadSize = udpPayloadSize
        self.extendedRCodeHigh = 0
        self.version = version
        self.dnssecOK = dnssecOK
        self.reservedFlags = 0
        self.options = options
    }
}

/// A whole DNS message. Counts are not stored: they are the lengths of the sections (plus one
/// additional record for `edns` when present).
public struct DNSMessage: Hashable, Sendable {
    /// Id and flags.
    public var header: DNSHeader
    /// The question section; exactly one entry in practice.
    public var questions: [DNSQuestion]
    /// The answer section.
    public var answers: [DNSResourceRecord]
    /// The authority section.
    public var authorities: [DNSResourceRecord]
    /// The additional section, without the OPT record.
    public var additionals: [DNSResourceRecord]
    /// The OPT record, when the message carries one.
    public var edns: DNSEDNS?

    /// A message with the given sections.
    public init(header: DNSHeader, questions: [DNSQuestion] = [], answers: [DNSResourceRecord] = [],
                authorities: [DNSResourceRecord] = [], additionals: [DNSResourceRecord] = [],
                edns: DNSEDNS? = nil) {
        self.header = header
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
        self.edns = edns
    }

    /// The full response code: the header's 4 bits extended by the OPT record's 8 (RFC 6891).
    public var responseCode: DNSResponseCode {
        get { DNSResponseCode(rawValue: UInt16(edns?.extendedRCodeHigh ?? 0) << 4 | UInt16(header.rcodeLow & 0xF)) }
        set {
            header.rcodeLow = UInt8(newValue.rawValue & 0xF)
            // Without an OPT record the high bits cannot be expressed and are dropped.
            if var extended = edns {
                extended.extendedRCodeHigh = UInt8(truncatingIfNeeded: newValue.rawValue >> 4)
                edns = extended
            }
        }
    }
}

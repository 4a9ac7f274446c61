// Why a DNS message, name or record was rejected. One error type for the whole DNS side, so the proxy
// can count rejections by reason and answer FORMERR without knowing which layer failed.

/// A DNS wire-format or presentation-format failure: what was wrong and where.
public struct DNSParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kinds of failure. Every input the parser refuses maps to exactly one of these.
    public enum Reason: Hashable, Sendable {
        /// The data ended before a field or section that the header or a length promised.
        case truncated
        /// The message is larger than 65,535 bytes, the most any DNS transport can carry.
        case messageTooLarge
        /// A length byte of 64...191: an extended (0b01) or reserved (0b10) label type. On the wire
        /// this is also how a label longer than 63 bytes appears, since the top two bits are taken.
        case unsupportedLabelType
        /// A presentation-format label longer than 63 bytes.
        case labelTooLong
        /// The uncompressed name would exceed 255 bytes (RFC 1035 section 2.3.4).
        case nameTooLong
        /// A presentation-format name with an empty label ("a..b", ".a").
        case emptyLabel
        /// A presentation-format escape that is not `\X` or `\DDD` with DDD <= 255.
        case invalidEscape
        /// A compression pointer to an offset at or after itself.
        case forwardPointer
        /// A compression pointer that is not strictly before the labels it was reached from, which is
        /// how loops (including a pointer to itself) are built; legitimate compressors never do this.
        case pointerLoop
        /// A compression pointer into the 12-byte header or beyond the message.
        case pointerOutOfBounds
        /// More compression pointers in one name than `DNSName.maxPointers`.
        case tooManyPointers
        /// Record data whose length does not fit its type (A not 4 bytes, AAAA not 16, a CNAME whose
        /// name does not fill its RDATA exactly, an RDLENGTH past the end of the message).
        case badRecordData
        /// More than one OPT record (RFC 6891 section 6.1.1).
        case multipleOPT
        /// An OPT record outside the additional section or with a non-root owner name.
        case misplacedOPT
        /// An EDNS option whose length runs past its OPT record.
        case badEDNSOption
        /// Bytes left over after every counted record was read.
        case trailingBytes
    }

    /// What was wrong.
    public let reason: Reason
    /// Byte offset into the message (or character offset into a presentation name) where it was found.
    public let offset: Int

    /// Creates an error for `reason` found at `offset`.
    public init(_ reason: Reason, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    /// Human-readable reason and offset, for logs and counters.
    public var description: String { "DNS \(reason) at offset \(offset)" }
}

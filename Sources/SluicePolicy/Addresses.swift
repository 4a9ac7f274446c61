// IP addresses and prefixes as the policy sees them: parsed from the strings of the schema,
// held as plain integers (IPv4 in a UInt32, IPv6 in a UInt128) so that the compiler can sort,
// split and search them without Foundation, and printed back in canonical form.

/// An IPv4 or IPv6 address. IPv4 is held host-order in the low 32 bits of a `UInt32`.
public enum IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    case v4(UInt32)
    case v6(UInt128)

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (with `::` compression and an optional
    /// trailing dotted quad). Returns nil for anything else, including zone ids and leading zeros
    /// in IPv4 octets (which some parsers read as octal: an ambiguity a firewall must not accept).
    public init?(_ text: some StringProtocol) {
        if text.contains(":") {
            guard let value = IPAddress.parseV6(Substring(text)) else { return nil }
            self = .v6(value)
        } else {
            guard let value = IPAddress.parseV4(Substring(text)) else { return nil }
            self = .v4(value)
        }
    }

    /// Whether this is an IPv4 address.
    public var isV4: Bool {
        if case .v4 = self { return true }
        return false
    }

    /// Number of bits in an address of this family (32 or 128).
    public var bitWidth: Int { isV4 ? 32 : 128 }

    public var description: String {
        switch self {
        case .v4(let value):
            return "\(value >> 24).\((value >> 16) & 0xff).\((value >> 8) & 0xff).\(value & 0xff)"
        case .v6(let value):
            return IPAddress.formatV6(value)
        }
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): return a < b
        case (.v6(let a), .v6(let b)): return a < b
        case (.v4, .v6): return true
        case (.v6, .v4): return false
        }
    }

    static func parseV4(_ text: Substring) -> UInt32? {
        var result: UInt32 = 0
        var octets = 0
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard octets < 4, !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let octet = UInt32(part), octet <= 255, !(part.count > 1 && part.first == "0")
            else { return nil }
            result = result << 8 | octet
            octets += 1
        }
        return octets == 4 ? result : nil
    }

    static func parseV6(_ text: Substring) -> UInt128? {
        guard !text.isEmpty, text.count <= 45 else { return nil }
        var head: [UInt16]
        var tail: [UInt16] = []
        if let gap = text.firstRange(of: "::") {
            let left = text[text.startIndex..<gap.lowerBound]
            let right = text[gap.upperBound...]
            guard !right.contains("::"),
                  let l = parseGroups(left, allowV4Tail: false),
                  let r = parseGroups(right, allowV4Tail: true),
                  l.count + r.count <= 7 else { return nil }
            head = l
            tail = r
        } else {
            guard let all = parseGroups(text, allowV4Tail: true), all.count == 8 else { return nil }
            head = all
        }
        let groups = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        var value: UInt128 = 0
        for group in groups { value = value << 16 | UInt128(group) }
        return value
    }

    /// Parses colon-separated hex groups; an IPv4 dotted quad may end the list (two groups).
    private static func parseGroups(_ text: Substring, allowV4Tail: Bool) -> [UInt16]? {
        if text.isEmpty { return [] }
        var groups: [UInt16] = []
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() {
            if index == parts.count - 1, allowV4Tail, part.contains(".") {
                guard let v4 = parseV4(part) else { return nil }
                groups.append(UInt16(v4 >> 16))
                groups.append(UInt16(v4 & 0xffff))
            } else {
                guard !part.isEmpty, part.count <= 4, let group = UInt16(part, radix: 16),
                      part.allSatisfy({ $0.isHexDigit }) else { return nil }
                groups.append(group)
            }
        }
        return groups
    }

    /// RFC 5952 text: lower case, longest run of two or more zero groups compressed.
    static func formatV6(_ value: UInt128) -> String {
        let groups = (0..<8).map { UInt16(truncatingIfNeeded: value >> (112 - 16 * $0)) }
        var bestStart = -1, bestLength = 1
        var index = 0
        while index < 8 {
            if groups[index] == 0 {
                var end = index
                while end < 8 && groups[end] == 0 { end += 1 }
                if end - index > bestLength { bestStart = index; bestLength = end - index }
                index = end
            } else {
                index += 1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}

/// A CIDR prefix: a network address and a prefix length. Host bits are always zero.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    /// The network address (host bits zero).
    public let address: IPAddress
    /// The prefix length, 0...32 for IPv4 and 0...128 for IPv6.
    public let length: Int

    /// A prefix from a network address whose host bits are zero; nil otherwise.
    public init?(address: IPAddress, length: Int) {
        guard length >= 0, length <= address.bitWidth else { return nil }
        let candidate = IPPrefix(unchecked: address, length: length)
        guard candidate.address == address else { return nil }
        self = candidate
    }

    /// The prefix that covers exactly one address.
    public init(host: IPAddress) {
        self.address = host
        self.length = host.bitWidth
    }

    /// Masks the host bits off `address`.
    init(unchecked address: IPAddress, length: Int) {
        switch address {
        case .v4(let value):
            let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << (32 - length)
            self.address = .v4(value & mask)
        case .v6(let value):
            let mask: UInt128 = length == 0 ? 0 : ~UInt128(0) << (128 - length)
            self.address = .v6(value & mask)
        }
        self.length = length
    }

    /// Why a CIDR string was refused.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case malformed
        case hostBitsSet(suggestion: String)

        public var description: String {
            switch self {
            case .malformed: return "is not a CIDR prefix (expected ADDRESS/LENGTH, e.g. 10.0.0.0/8 or 2001:db8::/32)"
            case .hostBitsSet(let suggestion): return "has host bits set; the network is \(suggestion)"
            }
        }
    }

    /// Parses `ADDRESS/LENGTH`. A prefix with host bits set is refused rather than silently
    /// widened: in a firewall rule the intent of `10.1.2.3/16` is ambiguous.
    public static func parse(_ text: some StringProtocol) -> Result<IPPrefix, ParseError> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddress(parts[0]),
              !parts[1].isEmpty, parts[1].count <= 3, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
              let length = Int(parts[1]), length <= address.bitWidth,
              !(parts[1].count > 1 && parts[1].first == "0")
        else { return .failure(.malformed) }
        let prefix = IPPrefix(unchecked: address, length: length)
        guard prefix.address == address else { return .failure(.hostBitsSet(suggestion: prefix.description)) }
        return .success(prefix)
    }

    /// Whether `other` lies inside this prefix (always false across families).
    public func contains(_ other: IPAddress) -> Bool {
        switch (address, other) {
        case (.v4, .v4), (.v6, .v6):
            return IPPrefix(unchecked: other, length: length).address == address
        default:
            return false
        }
    }

    /// The first and last address covered, as integers widened to UInt128 (IPv4 in the low bits).
    public var range: ClosedRange<UInt128> {
        switch address {
        case .v4(let value):
            let size = UInt128(1) << (32 - length)
            return UInt128(value)...(UInt128(value) + size - 1)
        case .v6(let value):
            let hostMask: UInt128 = length == 128 ? 0 : (length == 0 ? ~UInt128(0) : ~(~UInt128(0) << (128 - length)))
            return value...(value | hostMask)
        }
    }

    public var description: String { "\(address)/\(length)" }
}

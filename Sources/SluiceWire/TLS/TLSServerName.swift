// Validation of the SNI host name (RFC 6066 section 3): the name is what policy matches, so anything
// that is not plainly a DNS host name is refused rather than guessed at, and IP literals (which RFC 6066
// forbids and which would let a client dress an address up as a name) are refused explicitly.

/// SNI host name validation.
public enum TLSServerName {
    /// Longest host name in text form (255 wire bytes less the length bytes and root).
    public static let maxLength = 253

    /// Checks that `bytes` is an ASCII host name (letters, digits, '-', '_'; labels 1...63; no trailing dot;
    /// at most 253 characters) that is not an IP literal, and returns it lower-cased. Failures carry the
    /// offset into `bytes` where the problem is known (0 for whole-name problems).
    ///
    /// "IP literal" follows the WHATWG URL host parser: a name whose last label is all decimal digits, or
    /// "0x" and hex digits, is read as an IPv4 address by browsers and `inet_aton`, so it is refused; names
    /// with ':' or '[' are IPv6 literals.
    public static func validate(_ bytes: ArraySlice<UInt8>) -> Result<String, TLSParseError> {
        guard !bytes.isEmpty, bytes.count <= maxLength else {
            return .failure(TLSParseError(.serverNameInvalid, at: 0))
        }
        guard bytes.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            return .failure(TLSParseError(.serverNameNotASCII, at: 0))
        }
        if bytes.contains(UInt8(ascii: ":")) || bytes.contains(UInt8(ascii: "[")) {
            return .failure(TLSParseError(.serverNameIsIPLiteral, at: 0))
        }
        var lowered: [UInt8] = []
        lowered.reserveCapacity(bytes.count)
        var labelLength = 0
        var lastLabelStart = 0
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard labelLength > 0 else { return .failure(TLSParseError(.serverNameInvalid, at: 0)) }
                labelLength = 0
                lowered.append(byte)
                lastLabelStart = lowered.count
                continue
            }
            let isLetter = (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
            let isDigit = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
            guard isLetter || isDigit || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") else {
                return .failure(TLSParseError(.serverNameInvalid, at: 0))
            }
            labelLength += 1
            guard labelLength <= 63 else { return .failure(TLSParseError(.serverNameInvalid, at: 0)) }
            lowered.append(isLetter ? byte | 0x20 : byte)
        }
        // A trailing dot leaves an empty last label (RFC 6066: "without a trailing dot").
        guard labelLength > 0 else { return .failure(TLSParseError(.serverNameInvalid, at: 0)) }
        if endsInNumber(lowered[lastLabelStart...]) { return .failure(TLSParseError(.serverNameIsIPLiteral, at: 0)) }
        return .success(String(decoding: lowered, as: UTF8.self))
    }

    /// The WHATWG "ends in a number" check on the (lower-cased) last label.
    private static func endsInNumber(_ label: ArraySlice<UInt8>) -> Bool {
        let isDecimal = { (c: UInt8) in c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
        if label.allSatisfy(isDecimal) { return true }
        guard label.count >= 2, label.first == UInt8(ascii: "0"), label.dropFirst().first == UInt8(ascii: "x") else {
            return false
        }
        return label.dropFirst(2).allSatisfy { isDecimal($0) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) }
    }
}

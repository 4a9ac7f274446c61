// The Certificate message of TLS 1.2 and older (RFC 5246 section 7.4.2): the server's chain as DER
// blobs, leaf first. Only the framing is checked here; X.509 contents are another target's job. The
// TLS 1.3 form is never visible to a middlebox (it travels encrypted) and is not parsed.

/// The certificates of a TLS 1.2 Certificate message, as slices of the message body (no copies).
public struct TLSCertificateList: Hashable, Sendable {
    /// DER certificates in the order sent: the leaf first, then the chain toward a root.
    public var certificates: [ArraySlice<UInt8>]

    /// The leaf (end-entity) certificate, if the list is not empty.
    public var leaf: ArraySlice<UInt8>? { certificates.first }

    /// Parses a Certificate message body (after the 4-byte handshake header). The list must fill the body
    /// exactly and each certificate must be non-empty. Offsets in errors are into `body`.
    public init(parsing body: [UInt8]) throws(TLSParseError) {
        var cursor = WireCursor(body)
        guard var list = cursor.readVector(prefixBytes: 3) else { throw TLSParseError(.truncated, at: 0) }
        guard cursor.isAtEnd else { throw TLSParseError(.trailingBytes, at: cursor.position) }
        certificates = []
        while !list.isEmptyWindow {
            guard let certificate = list.readVector(prefixBytes: 3) else {
                throw TLSParseError(.truncated, at: list.position)
            }
            guard certificate.remaining >= 1 else { throw TLSParseError(.badLength, at: certificate.position - 3) }
            certificates.append(body[certificate.position..<certificate.end])
        }
    }
}

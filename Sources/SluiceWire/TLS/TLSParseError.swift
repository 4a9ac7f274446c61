// Why a TLS byte stream or handshake message was rejected. The dataplane fails closed on every one of
// these and counts them by reason, so each distinct problem has its own case.

/// A TLS record-layer or handshake parsing failure: what was wrong and where.
public struct TLSParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kinds of failure.
    public enum Reason: Hashable, Sendable {
        /// The stream does not start with a TLS handshake record (0x16 0x03): not TLS, or SSLv2.
        case notHandshake
        /// A record with a content type other than change_cipher_spec, alert, handshake or application_data.
        case unknownContentType
        /// A record whose version's major byte is not 3.
        case badRecordVersion
        /// A record longer than TLS allows (2^14 + 2048 for protected records, 2^14 for plaintext handshake).
        case recordTooLarge
        /// A handshake record with no payload (forbidden by RFC 8446 section 5.1).
        case emptyHandshakeRecord
        /// Another record type arrived while a handshake message was split across records (RFC 8446 5.1).
        case interleavedRecord
        /// A handshake message longer than the reader's `maxMessageLength`.
        case messageTooLarge
        /// More bytes buffered than the reader's `maxBufferedBytes`.
        case bufferLimitExceeded
        /// A handshake message or record that cannot come at this point of the flight.
        case unexpectedMessage
        /// A field or vector runs past the end of its message or enclosing vector.
        case truncated
        /// A vector whose length breaks its own rules (odd cipher suite bytes, session id over 32, empty lists).
        case badLength
        /// Bytes left over after the last field of a message or extension.
        case trailingBytes
        /// The same extension type twice in one hello (RFC 8446 section 4.2).
        case duplicateExtension
        /// server_name holds a name type other than host_name (0), which cannot be parsed.
        case unknownServerNameType
        /// server_name lists more than one host_name (RFC 6066 section 3).
        case duplicateServerName
        /// The SNI host name has a byte outside printable ASCII.
        case serverNameNotASCII
        /// The SNI host name is an IPv4 or IPv6 literal, which RFC 6066 forbids.
        case serverNameIsIPLiteral
        /// The SNI host name is not a host name: empty labels, a trailing dot, labels over 63 bytes, over 253
        /// characters, or characters other than letters, digits, '-' and '_'.
        case serverNameInvalid
    }

    /// What was wrong.
    public let reason: Reason
    /// Byte offset where it was found: into the stream for record-layer failures, into the handshake
    /// message body for message failures.
    public let offset: Int

    /// Creates an error for `reason` found at `offset`.
    public init(_ reason: Reason, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    /// Human-readable reason and offset, for logs and counters.
    public var description: String { "TLS \(reason) at offset \(offset)" }
}

// The ServerHello (RFC 8446 section 4.1.3, RFC 5246 section 7.4.1.3): which version was negotiated, so
// the dataplane knows whether a Certificate message will be visible (TLS <= 1.2) or hidden (TLS 1.3),
// and whether it is really a HelloRetryRequest, after which a second ClientHello and ServerHello follow.

/// A parsed ServerHello or HelloRetryRequest.
public struct TLSServerHello: Hashable, Sendable {
    /// SHA-256 of "HelloRetryRequest": the random that marks a HelloRetryRequest (RFC 8446 section 4.1.3).
    public static let helloRetryRequestRandom: [UInt8] = [
        0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
        0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
    ]

    /// legacy_version (0x0303 for TLS 1.2 and 1.3).
    public var legacyVersion: UInt16
    /// The 32-byte random.
    public var random: [UInt8]
    /// legacy_session_id_echo.
    public var sessionID: [UInt8]
    /// The chosen cipher suite.
    public var cipherSuite: UInt16
    /// The chosen compression method.
    public var compressionMethod: UInt8
    /// Extension types in the order sent.
    public var extensionTypes: [UInt16]
    /// The version from supported_versions, when present (TLS 1.3 and later).
    public var selectedVersion: UInt16?
    /// The key share group (ServerHello) or the group asked for (HelloRetryRequest), when present.
    public var keyShareGroup: UInt16?
    /// The ALPN protocol chosen, when sent here (TLS 1.2; TLS 1.3 sends it encrypted).
    public var alpnProtocol: [UInt8]?

    /// Whether this is a HelloRetryRequest rather than a real ServerHello.
    public var isHelloRetryRequest: Bool { random == TLSServerHello.helloRetryRequestRandom }

    /// The negotiated version: supported_versions when present (RFC 8446 section 4.2.1), else legacy_version.
    public var negotiatedVersion: UInt16 { selectedVersion ?? legacyVersion }

    /// Whether the rest of the handshake, certificate included, is encrypted (TLS 1.3 or later).
    public var hidesCertificate: Bool { negotiatedVersion >= 0x0304 }

    /// Parses a ServerHello message body (after the 4-byte handshake header). Offsets in errors are into `body`.
    public init(parsing body: [UInt8]) throws(TLSParseError) {
        var cursor = WireCursor(body)
        guard let version = cursor.readU16(), let random = cursor.readBytes(32),
              let session = cursor.readVector(prefixBytes: 1)
        else { throw TLSParseError(.truncated, at: cursor.position) }
        guard session.remaining <= 32 else { throw TLSParseError(.badLength, at: session.position - 1) }
        guard let suite = cursor.readU16(), let compression = cursor.readU8() else {
            throw TLSParseError(.truncated, at: cursor.position)
        }
        legacyVersion = version
        self.random = random
        sessionID = Array(body[session.position..<session.end])
        cipherSuite = suite
        compressionMethod = compression
        extensionTypes = []
        selectedVersion = nil
        keyShareGroup = nil
        alpnProtocol = nil
        if cursor.isAtEnd { return }
        guard var extensions = cursor.readVector(prefixBytes: 2) else {
            throw TLSParseError(.truncated, at: cursor.position)
        }
        guard cursor.isAtEnd else { throw TLSParseError(.trailingBytes, at: cursor.position) }
        var seen = Set<UInt16>()
        while !extensions.isEmptyWindow {
            guard let type = extensions.readU16(), var data = extensions.readVector(prefixBytes: 2) else {
                throw TLSParseError(.truncated, at: extensions.position)
            }
            guard seen.insert(type).inserted else { throw TLSParseError(.duplicateExtension, at: data.position - 4) }
            extensionTypes.append(type)
            switch type {
            case TLSExtensionType.supportedVersions:
                guard let selected = data.readU16() else { throw TLSParseError(.truncated, at: data.position) }
                selectedVersion = selected
            case TLSExtensionType.keyShare:
                // ServerHello: a KeyShareEntry; HelloRetryRequest: just the group. Both start with the group.
                guard let group = data.readU16() else { throw TLSParseError(.truncated, at: data.position) }
                keyShareGroup = group
                if !data.isEmptyWindow {
                    guard let key = data.readVector(prefixBytes: 2), key.remaining >= 1 else {
                        throw TLSParseError(.badLength, at: data.position)
                    }
                }
            case TLSExtensionType.alpn:
                // Exactly one name in a list (RFC 7301 section 3.1).
                guard var list = data.readVector(prefixBytes: 2), let name = list.readVector(prefixBytes: 1),
                      name.remaining >= 1, list.isEmptyWindow
                else { throw TLSParseError(.badLength, at: data.position) }
                alpnProtocol = Array(body[name.position..<name.end])
            default:
                _ = data.readRange(data.remaining)
            }
            guard data.isEmptyWindow else { throw TLSParseError(.trailingBytes, at: data.position) }
        }
    }
}

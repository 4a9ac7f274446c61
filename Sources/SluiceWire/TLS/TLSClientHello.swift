// The ClientHello (RFC 8446 section 4.1.2, RFC 5246 section 7.4.1.2): the fields a firewall judges a
// TLS flow by (SNI, ALPN, offered versions, key share groups, ECH presence) and the lists a fingerprint
// needs (cipher suites, extension order). Everything else is skipped after its length is checked.

/// TLS extension type numbers used here.
public enum TLSExtensionType {
    /// server_name (RFC 6066).
    public static let serverName: UInt16 = 0
    /// application_layer_protocol_negotiation (RFC 7301).
    public static let alpn: UInt16 = 16
    /// supported_versions (RFC 8446).
    public static let supportedVersions: UInt16 = 43
    /// key_share (RFC 8446).
    public static let keyShare: UInt16 = 51
    /// encrypted_client_hello (draft-ietf-tls-esni, final code point).
    public static let encryptedClientHello: UInt16 = 0xFE0D
}

/// A parsed ClientHello.
public struct TLSClientHello: Hashable, Sendable {
    /// legacy_version (0x0303 for TLS 1.2 and 1.3).
    public var legacyVersion: UInt16
    /// The 32-byte random.
    public var random: [UInt8]
    /// legacy_session_id (0...32 bytes).
    public var sessionID: [UInt8]
    /// Offered cipher suites in order, GREASE values included.
    public var cipherSuites: [UInt16]
    /// legacy_compression_methods.
    public var compressionMethods: [UInt8]
    /// Extension types in the order sent.
    public var extensionTypes: [UInt16]
    /// The SNI host name, validated (see `TLSParseError.Reason.serverNameInvalid`) and lower-cased; nil when
    /// the client sent no server_name extension.
    public var serverName: String?
    /// ALPN protocol names in preference order (raw bytes: RFC 7301 does not require text).
    public var alpnProtocols: [[UInt8]]
    /// Versions from supported_versions, in order; empty when the extension is absent (TLS 1.2 or older).
    public var supportedVersions: [UInt16]
    /// Groups of the offered key shares, in order.
    public var keyShareGroups: [UInt16]
    /// Whether an encrypted_client_hello extension (0xfe0d) is present: the real SNI is then hidden and
    /// `serverName` is the public (outer) name.
    public var hasEncryptedClientHello: Bool

    /// ALPN names as text (invalid UTF-8 replaced), for logs and matching.
    public var alpnProtocolNames: [String] { alpnProtocols.map { String(decoding: $0, as: UTF8.self) } }

    /// The highest version offered: the top of supported_versions when present, else legacy_version.
    /// GREASE values (0x?A?A) are ignored.
    public var maximumOfferedVersion: UInt16 {
        supportedVersions.filter { $0 & 0x0F0F != 0x0A0A }.max() ?? legacyVersion
    }

    /// Parses a ClientHello message body (after the 4-byte handshake header). Offsets in errors are
    /// into `body`.
    public init(parsing body: [UInt8]) throws(TLSParseError) {
        var cursor = WireCursor(body)
        guard let version = cursor.readU16(), let random = cursor.readBytes(32) else {
            throw TLSParseError(.truncated, at: cursor.position)
        }
        legacyVersion = version
        self.random = random
        guard let session = cursor.readVector(prefixBytes: 1) else {
            throw TLSParseError(.truncated, at: cursor.position)
        }
        guard session.remaining <= 32 else { throw TLSParseError(.badLength, at: session.position - 1) }
        sessionID = Array(body[session.position..<session.end])

        guard var suites = cursor.readVector(prefixBytes: 2) else {

            throw TLSParseError(.truncated, at: cursor.position)

        }
        guard suites.remaining >= 2, suites.remaining % 2 == 0 else {
            throw TLSParseError(.badLength, at: suites.position - 2)
        }
        cipherSuites = []
        cipherSuites.reserveCapacity(suites.remaining / 2)
        while let suite = suites.readU16() { cipherSuites.append(suite) }

        guard let compression = cursor.readVector(prefixBytes: 1) else {
            throw TLSParseError(.truncated, at: cursor.position)
        }
        guard compression.remaining >= 1 else { throw TLSParseError(.badLength, at: compression.position - 1) }
        compressionMethods = Array(body[compression.position..<compression.end])

        extensionTypes = []
        serverName = nil
        alpnProtocols = []
        supportedVersions = []
        keyShareGroups = []
        hasEncryptedClientHello = false
        // TLS 1.2 and older may end here with no extensions block at all.
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
            case TLSExtensionType.serverName:
                serverName = try TLSClientHello.parseServerName(&data)
            case TLSExtensionType.alpn:
                alpnProtocols = try TLSClientHello.parseALPN(&data)
            case TLSExtensionType.supportedVersions:
                guard var list = data.readVector(prefixBytes: 1) else {
                    throw TLSParseError(.truncated, at: data.position)
                }
                guard list.remaining >= 2, list.remaining % 2 == 0 else {
                    throw TLSParseError(.badLength, at: list.position - 1)
                }
                while let version = list.readU16() { supportedVersions.append(version) }
            case TLSExtensionType.keyShare:
                guard var shares = data.readVector(prefixBytes: 2) else {
                    throw TLSParseError(.truncated, at: data.position)
                }
                while !shares.isEmptyWindow {
                    guard let group = shares.readU16(), let key = shares.readVector(prefixBytes: 2) else {
                        throw TLSParseError(.truncated, at: shares.position)
                    }
                    guard key.remaining >= 1 else { throw TLSParseError(.badLength, at: key.position - 2) }
                    keyShareGroups.append(group)
                }
            case TLSExtensionType.encryptedClientHello:
                hasEncryptedClientHello = true
                _ = data.readRange(data.remaining)
            default:
                _ = data.readRange(data.remaining)
            }
            guard data.isEmptyWindow else { throw TLSParseError(.trailingBytes, at: data.position) }
        }
    }

    private static func parseServerName(_ data: inout WireCursor) throws(TLSParseError) -> String {
        guard var list = data.readVector(prefixBytes: 2) else { throw TLSParseError(.truncated, at: data.position) }
        guard !list.isEmptyWindow else { throw TLSParseError(.badLength, at: list.position - 2) }
        var name: String? = nil
        while !list.isEmptyWindow {
            guard let nameType = list.readU8() else { throw TLSParseError(.truncated, at: list.position) }
            // Only host_name is defined, and the length format of any other type is unknown (RFC 6066).
            guard nameType == 0 else { throw TLSParseError(.unknownServerNameType, at: list.position - 1) }
            guard let host = list.readVector(prefixBytes: 2) else { throw TLSParseError(.truncated, at: list.position) }
            guard name == nil else { throw TLSParseError(.duplicateServerName, at: host.position - 3) }
            switch TLSServerName.validate(list.bytes[host.position..<host.end]) {
            case .success(let text): name = text
            case .failure(let error): throw TLSParseError(error.reason, at: host.position + error.offset)
            }
        }
        return name ?? ""
    }

    private static func parseALPN(_ data: inout WireCursor) throws(TLSParseError) -> [[UInt8]] {
        guard var list = data.readVector(prefixBytes: 2) else { throw TLSParseError(.truncated, at: data.position) }
        guard list.remaining >= 2 else { throw TLSParseError(.badLength, at: list.position - 2) }
        var protocols: [[UInt8]] = []
        while !list.isEmptyWindow {
            guard let name = list.readVector(prefixBytes: 1) else { throw TLSParseError(.truncated, at: list.position) }
            guard name.remaining >= 1 else { throw TLSParseError(.badLength, at: name.position - 1) }
            protocols.append(Array(list.bytes[name.position..<name.end]))
        }
        return protocols
    }
}

extension WireCursor {
    /// Whether nothing is left in the window (reads as a condition in `while` loops).
    var isEmptyWindow: Bool { remaining <= 0 }
}

// The TLS record layer for one direction of a TCP stream: takes contiguous in-order bytes as they
// arrive, splits them into records, and reassembles handshake messages however the sender cut them
// (one message over many records, many messages in one record). Memory is bounded: by the largest
// message accepted and by the bytes held at any time. It never decrypts: once keys change the
// consumer must stop asking for messages (TLS 1.2 after change_cipher_spec, TLS 1.3 after ServerHello).
//
//   bytes ─► [input: partial record] ─► handshake payloads ─► [pending: partial message] ─► messages
//                                     └─► change_cipher_spec / alert / other records as events

/// A handshake message: its type and body (without the 4-byte header).
public struct TLSHandshakeMessage: Hashable, Sendable {
    /// HandshakeType (1 client_hello, 2 server_hello, 11 certificate, ...).
    public var type: UInt8
    /// The message body.
    public var body: [UInt8]

    /// ClientHello.
    public static let clientHello: UInt8 = 1
    /// ServerHello (and HelloRetryRequest, which shares its type).
    public static let serverHello: UInt8 = 2
    /// Certificate.
    public static let certificate: UInt8 = 11
    /// ServerKeyExchange (TLS 1.2).
    public static let serverKeyExchange: UInt8 = 12
    /// ServerHelloDone (TLS 1.2).
    public static let serverHelloDone: UInt8 = 14
}

/// What the reader has next.
public enum TLSReadEvent: Hashable, Sendable {
    /// Nothing complete yet; append more bytes.
    case needMoreData
    /// A complete handshake message.
    case message(TLSHandshakeMessage)
    /// A change_cipher_spec record (in TLS 1.2, keys change after it; in TLS 1.3 it means nothing).
    case changeCipherSpec
    /// A plaintext alert record (level, description).
    case alert(level: UInt8, description: UInt8)
    /// Any other record that carries no plaintext handshake data: application data, or an alert longer
    /// than two bytes (encrypted).
    case opaqueRecord(contentType: UInt8)
    /// The stream is not acceptable TLS; every later call returns the same.
    case failed(TLSParseError)
}

/// Bounds on what a reader holds.
public struct TLSReaderLimits: Hashable, Sendable {
    /// Longest handshake message body accepted.
    public var maxMessageLength: Int
    /// Most bytes held at once (partial records plus partial messages).
    public var maxBufferedBytes: Int

    /// Limits for a client's first flight. A ClientHello with post-quantum key shares is about 1.8 KB and
    /// with ECH a few KB more; 16 KiB leaves room for any real one while bounding the dataplane's per-flow
    /// buffer.
    public static let clientHello = TLSReaderLimits(maxMessageLength: 16_384, maxBufferedBytes: 16_384 + 2 * 5)

    /// Limits for a server's flight up to its Certificate message: long chains reach tens of KB.
    public static let serverFlight = TLSReaderLimits(maxMessageLength: 65_536, maxBufferedBytes: 65_536 + 18_432 + 5)

    /// Custom limits.
    public init(maxMessageLength: Int, maxBufferedBytes: Int) {
        self.maxMessageLength = maxMessageLength
        self.maxBufferedBytes = maxBufferedBytes
    }
}

/// Reads records and handshake messages from one direction of a TLS connection. A value type with no
/// shared state: one per flow direction, touched by one thread at a time.
public struct TLSHandshakeReader: Sendable {
    /// The bounds this reader enforces.
    public let limits: TLSReaderLimits
    /// Bytes received but not yet consumed as whole records.
    private var input: [UInt8] = []
    /// Handshake payload bytes not yet consumed as whole messages.
    private var pending: [UInt8] = []
    /// Stream offset of `input[0]`, for error offsets.
    private var streamOffset = 0
    private var failure: TLSParseError? = nil

    /// Longest protected record (RFC 5246 section 6.2.3; RFC 8446 allows less).
    static let maxRecordLength = 16_384 + 2_048
    /// Longest plaintext record (RFC 8446 section 5.1).
    static let maxPlaintextLength = 16_384

    /// A reader with the given limits.
    public init(limits: TLSReaderLimits) {
        self.limits = limits
    }

    /// Total bytes appended so far.
    public var bytesReceived: Int { streamOffset + input.count }

    /// Stream offset just past the last record consumed: where an unexpected event came from, the same
    /// however the stream was cut into appends.
    public var recordsEnd: Int { streamOffset }

    /// Bytes currently held (partial records and partial messages).
    public var bufferedBytes: Int { input.count + pending.count }

    /// Appends the next contiguous bytes of the stream. Fails the reader (see `next()`) when that would
    /// hold more than `limits.maxBufferedBytes`; drain with `next()` after every append.
    public mutating func append<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        guard failure == nil else { return }
        guard bytes.count <= limits.maxBufferedBytes - bufferedBytes else {
            failure = TLSParseError(.bufferLimitExceeded, at: bytesReceived)
            return
        }
        input.append(contentsOf: bytes)
    }

    /// The next event: a complete message, a non-handshake record, `.needMoreData`, or `.failed`.
    public mutating func next() -> TLSReadEvent {
        if let failure { return .failed(failure) }
        while true {
            switch takeMessage() {
            case .success(let message?): return .message(message)
            case .failure(let error): return fail(error)
            case .success(nil): break
            }
            // No complete message buffered: consume one more record.
            guard input.count >= 5 else { return .needMoreData }
            let contentType = input[0]
            let length = Int(input[3]) << 8 | Int(input[4])
            guard (20...23).contains(contentType) else { return fail(.unknownContentType, at: streamOffset) }
            guard input[1] == 3 else { return fail(.badRecordVersion, at: streamOffset + 1) }
            guard length <= TLSHandshakeReader.maxRecordLength else {
                return fail(.recordTooLarge, at: streamOffset + 3)
            }
            if contentType == 22 {
                guard length > 0 else { return fail(.emptyHandshakeRecord, at: streamOffset + 3) }
                guard length <= TLSHandshakeReader.maxPlaintextLength else {
                    return fail(.recordTooLarge, at: streamOffset + 3)
                }
            } else if !pending.isEmpty {
                return fail(.interleavedRecord, at: streamOffset)
            }
            // Fail as soon as the header shows the record can never fit, not when its last byte arrives.
            guard 5 + length + pending.count <= limits.maxBufferedBytes else {
                return fail(.bufferLimitExceeded, at: streamOffset + 3)
            }
            guard input.count >= 5 + length else { return .needMoreData }
            let payload = input[5..<(5 + length)]
            defer {
                input.removeFirst(5 + length)
                streamOffset += 5 + length
            }
            switch contentType {
            case 22:
                pending.append(contentsOf: payload)
            case 20:
                return .changeCipherSpec
            case 21 where length == 2:
                return .alert(level: payload[payload.startIndex], description: payload[payload.startIndex + 1])
            default:
                return .opaqueRecord(contentType: contentType)
            }
        }
    }

    /// Removes one complete message from `pending`, if there is one.
    private mutating func takeMessage() -> Result<TLSHandshakeMessage?, TLSParseError> {
        guard pending.count >= 4 else { return .success(nil) }
        let length = Int(pending[1]) << 16 | Int(pending[2]) << 8 | Int(pending[3])
        guard length <= limits.maxMessageLength else {
            // The message header is the first pending byte's stream position: close enough for a counter.
            return .failure(TLSParseError(.messageTooLarge, at: streamOffset))
        }
        guard pending.count >= 4 + length else { return .success(nil) }
        let message = TLSHandshakeMessage(type: pending[0], body: Array(pending[4..<(4 + length)]))
        pending.removeFirst(4 + length)
        return .success(message)
    }

    private mutating func fail(_ reason: TLSParseError.Reason, at offset: Int) -> TLSReadEvent {
        fail(TLSParseError(reason, at: offset))
    }

    private mutating func fail(_ error: TLSParseError) -> TLSReadEvent {
        failure = error
        input = []
        pending = []
        return .failed(error)
    }
}

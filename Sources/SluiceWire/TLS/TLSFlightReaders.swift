// The two incremental readers the dataplane drives per pending TLS flow: one for the client's first
// flight (up to the ClientHello), one for the server's (up to the Certificate, or the point where it is
// known to be hidden). Feed contiguous in-order bytes as they arrive; each call says whether a decision
// can be made yet. Both are value types built on `TLSHandshakeReader`, bounded by its limits.

/// What the client direction has shown so far.
public enum TLSClientHelloResult: Hashable, Sendable {
    /// No complete ClientHello yet.
    case needMoreData
    /// The ClientHello; further input is not read.
    case clientHello(TLSClientHello)
    /// Not an acceptable ClientHello; fail closed.
    case failed(TLSParseError)
}

/// Reads a client's stream up to its first ClientHello.
public struct TLSClientHelloReader: Sendable {
    private var reader: TLSHandshakeReader
    private var result: TLSClientHelloResult = .needMoreData

    /// A reader with the given bounds (`.clientHello` by default).
    public init(limits: TLSReaderLimits = .clientHello) {
        reader = TLSHandshakeReader(limits: limits)
    }

    /// The outcome so far, without feeding anything.
    public var currentResult: TLSClientHelloResult { result }

    /// Feeds the next bytes of the client's stream. Once a ClientHello or a failure is returned, the
    /// same result is returned for every later call.
    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) -> TLSClientHelloResult where Bytes.Element == UInt8 {
        guard case .needMoreData = result else { return result }
        // Decide on the first byte: a stream that does not open with a handshake record is not TLS, or
        // is SSLv2-framed, which no current client sends.
        if reader.bytesReceived == 0, let first = bytes.first, first != 22 {
            result = .failed(TLSParseError(.notHandshake, at: 0))
            return result
        }
        reader.append(bytes)
        switch reader.next() {
        case .needMoreData:
            break
        case .message(let message) where message.type == TLSHandshakeMessage.clientHello:
            do {
                result = .clientHello(try TLSClientHello(parsing: message.body))
            } catch {
                result = .failed(error)
            }
        case .failed(let error):
            result = .failed(error)
        case .message, .changeCipherSpec, .alert, .opaqueRecord:
            result = .failed(TLSParseError(.unexpectedMessage, at: reader.recordsEnd))
        }
        return result
    }
}

/// What the server direction has shown.
public enum TLSServerFlightEvent: Hashable, Sendable {
    /// Nothing new yet.
    case needMoreData
    /// A ServerHello or HelloRetryRequest. After a HelloRetryRequest the reader goes on to the next
    /// ServerHello; after a TLS 1.3 ServerHello it is finished (`.certificateHidden` follows).
    case serverHello(TLSServerHello)
    /// The TLS 1.2 Certificate message; the reader is finished.
    case certificates(TLSCertificateList)
    /// The certificate will not be seen in clear: TLS 1.3 was negotiated, or a TLS 1.2 session was resumed
    /// (change_cipher_spec before any Certificate). The reader is finished.
    case certificateHidden
    /// Not an acceptable server flight; fail closed.
    case failed(TLSParseError)
}

/// Reads a server's stream up to its Certificate message.
public struct TLSServerFlightReader: Sendable {
    private var reader: TLSHandshakeReader
    private var serverHello: TLSServerHello? = nil
    private var finalEvent: TLSServerFlightEvent? = nil

    /// A reader with the given bounds (`.serverFlight` by default).
    public init(limits: TLSReaderLimits = .serverFlight) {
        reader = TLSHandshakeReader(limits: limits)
    }

    /// The ServerHello seen, once there is one (not a HelloRetryRequest).
    public var negotiated: TLSServerHello? { serverHello }

    /// Appends the next bytes of the server's stream; then call `next()` until `.needMoreData` or a final event.
    public mutating func append<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        guard finalEvent == nil else { return }
        // A handshake record, or a warning alert first (OpenSSL sends unrecognized_name before the
        // ServerHello when it has no certificate for the SNI); `next()` judges the alert's level.
        if reader.bytesReceived == 0, let first = bytes.first, first != 22 && first != 21 {
            finalEvent = .failed(TLSParseError(.notHandshake, at: 0))
            return
        }
        reader.append(bytes)
    }

    /// The next event. Final events (`.certificates`, `.certificateHidden`, `.failed`) repeat forever.
    public mutating func next() -> TLSServerFlightEvent {
        if let finalEvent { return finalEvent }
        while true {
            let event = reader.next()
            switch event {
            case .needMoreData:
                return .needMoreData
            case .failed(let error):
                return finish(.failed(error))
            case .changeCipherSpec:
                // TLS 1.3 middlebox-compatibility CCS (after a HelloRetryRequest) means nothing; in TLS 1.2
                // after the ServerHello it means an abbreviated handshake with no Certificate.
                if let serverHello, !serverHello.hidesCertificate { return finish(.certificateHidden) }
                continue
            case .alert(let level, let description) where level == 1 && description != 0:
                continue  // a warning (e.g. unrecognized_name): the handshake goes on
            case .alert, .opaqueRecord:
                return finish(.failed(TLSParseError(.unexpectedMessage, at: reader.recordsEnd)))
            case .message(let message):
                if serverHello != nil {
                    // TLS 1.2 after ServerHello: Certificate, or ServerKeyExchange/ServerHelloDone when the
                    // suite is anonymous or PSK (no certificate at all).
                    switch message.type {
                    case TLSHandshakeMessage.certificate:
                        do {
                            return finish(.certificates(try TLSCertificateList(parsing: message.body)))
                        } catch {
                            return finish(.failed(error))
                        }
                    case TLSHandshakeMessage.serverKeyExchange, TLSHandshakeMessage.serverHelloDone:
                        return finish(.certificateHidden)
                    default:
                        return finish(.failed(TLSParseError(.unexpectedMessage, at: reader.recordsEnd)))
                    }
                }
                guard message.type == TLSHandshakeMessage.serverHello else {
                    return finish(.failed(TLSParseError(.unexpectedMessage, at: reader.recordsEnd)))
                }
                let hello: TLSServerHello
                do {
                    hello = try TLSServerHello(parsing: message.body)
                } catch {
                    return finish(.failed(error))
                }
                if !hello.isHelloRetryRequest {
                    serverHello = hello
                    if hello.hidesCertificate { finalEvent = .certificateHidden }
                }
                return .serverHello(hello)
            }
        }
    }

    private mutating func finish(_ event: TLSServerFlightEvent) -> TLSServerFlightEvent {
        finalEvent = event
        return event
    }
}

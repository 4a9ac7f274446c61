// Hand-made hostile TLS input: record-layer abuse (wrong framing, oversize, interleaving, buffer
// exhaustion), malformed hellos, SNI values that are not host names, every truncation of the captured
// messages, and seeded mutation fuzzing of streams and message bodies: refusals with a reason, never traps.
import Testing
@testable import SluiceWire

@Suite struct TLSHostileTests {
    func feed(_ bytes: [UInt8], limits: TLSReaderLimits = .clientHello) -> TLSClientHelloResult {
        var reader = TLSClientHelloReader(limits: limits)
        return reader.feed(bytes)
    }

    func reason(_ result: TLSClientHelloResult) -> TLSParseError.Reason? {
        if case .failed(let error) = result { return error.reason }
        return nil
    }

    func helloReason(_ extensions: [[UInt8]]) -> TLSParseError.Reason? {
        do {
            _ = try TLSClientHello(parsing: TLSBytes.clientHelloBody(extensions: extensions))
            return nil
        } catch {
            return error.reason
        }
    }

    func hello(_ extensions: [[UInt8]]) throws -> TLSClientHello {
        try TLSClientHello(parsing: TLSBytes.clientHelloBody(extensions: extensions))
    }

    @Test func decidesOnTheFirstBytes() {
        #expect(reason(feed([0x47])) == .notHandshake)                   // "GET ..."
        #expect(reason(feed([0x80, 0x2E, 0x01])) == .notHandshake)       // SSLv2-framed hello
        #expect(reason(feed([22, 2, 0, 0, 1])) == .badRecordVersion)
        #expect(reason(feed([22, 3, 1, 0x48, 0x01])) == .recordTooLarge)  // protected-record bound
        #expect(reason(feed([22, 3, 1, 0x40, 0x01])) == .recordTooLarge)  // plaintext bound for handshake
        #expect(reason(feed([22, 3, 1, 0, 0])) == .emptyHandshakeRecord)
        #expect(feed([22, 3, 1]) == .needMoreData)
        // A message header announcing more than the limit fails at once, before the body arrives.
        #expect(reason(feed(TLSBytes.record([1, 0x01, 0x00, 0x00]))) == .messageTooLarge)
        #expect(reason(feed(TLSBytes.record([1, 0x00, 0x40, 0x01]))) == .messageTooLarge)
        #expect(feed(TLSBytes.record([1, 0x00, 0x40, 0x00])) == .needMoreData)
    }

    @Test func otherRecordTypesBeforeTheHello() {
        var reader = TLSClientHelloReader()
        #expect(reader.feed([22]) == .needMoreData)
        #expect(reason(reader.feed([3, 3, 0, 2, 1, 0])) == nil)  // still a fragment of the handshake record
        #expect(reason(feed(TLSBytes.record([2, 0, 0, 0], type: 22) )) == .unexpectedMessage)   // a ServerHello
        #expect(reason(feed([22, 3, 1, 0, 1, 1] + TLSBytes.record([1], type: 24))) == .unknownContentType)
        #expect(reason(feed([22, 3, 1, 0, 1, 1] + TLSBytes.record([1], type: 20))) == .interleavedRecord)
        #expect(reason(feed([22, 3, 1, 0, 1, 1] + TLSBytes.record([2, 40], type: 21))) == .interleavedRecord)
    }

    @Test func bufferBound() {
        let limits = TLSReaderLimits(maxMessageLength: 16_384, maxBufferedBytes: 1_000)
        var reader = TLSClientHelloReader(limits: limits)
        // A record that could never fit fails from its header alone.
        #expect(reason(reader.feed([22, 3, 1, 0x04, 0x00])) == .bufferLimitExceeded)
        // A message spread over many small records fills the buffer and fails.
        reader = TLSClientHelloReader(limits: limits)
        var result = reader.feed(TLSBytes.record([1, 0, 0x10, 0]))
        var records = 0
        while result == .needMoreData, records < 1_000 {
            result = reader.feed(TLSBytes.record([UInt8](repeating: 0, count: 100)))
            records += 1
        }
        #expect(reason(result) == .bufferLimitExceeded)
        #expect(records < 12)
        // One append larger than the bound.
        reader = TLSClientHelloReader(limits: limits)
        #expect(reason(reader.feed([22] + [UInt8](repeating: 3, count: 1_000))) == .bufferLimitExceeded)
    }

    @Test func severalMessagesInOneRecordAndOneMessageOverManyRecords() throws {
        let body = TLSBytes.clientHelloBody(extensions: [TLSBytes.sni("a.example")])
        let message = TLSBytes.handshake(1, body)
        for size in [1, 2, 3, 5, 17, message.count] {
            guard case .clientHello(let hello) = feed(TLSBytes.records(message, size: size)) else {
                Issue.record("size \(size)")
                continue
            }
            #expect(hello.serverName == "a.example")
        }
        // ServerHello, Certificate and ServerHelloDone in one record.
        var serverHello = [UInt8]([3, 3]) + [UInt8](repeating: 1, count: 32) + [0, 0xC0, 0x2F, 0]
        serverHello += TLSBytes.vector(2, [])
        let certificate = TLSBytes.vector(3, TLSBytes.vector(3, [0x30, 0x03, 1, 2, 3]) + TLSBytes.vector(3, [0x30, 0]))
        let flight = TLSBytes.handshake(2, serverHello) + TLSBytes.handshake(11, certificate)
            + TLSBytes.handshake(14, [])
        var reader = TLSServerFlightReader()
        reader.append(TLSBytes.record(flight))
        guard case .serverHello(let hello) = reader.next() else { Issue.record("no ServerHello"); return }
        #expect(hello.negotiatedVersion == 0x0303 && hello.cipherSuite == 0xC02F)
        guard case .certificates(let list) = reader.next() else { Issue.record("no Certificate"); return }
        #expect(list.certificates.map(Array.init) == [[0x30, 0x03, 1, 2, 3], [0x30, 0]])
        #expect(reader.next() == .certificates(list))
    }

    @Test func serverFlightOddities() {
        let serverHello = [UInt8]([3, 3]) + [UInt8](repeating: 1, count: 32) + [0, 0xC0, 0x2F, 0]
        // Resumption: change_cipher_spec right after the ServerHello.
        var reader = TLSServerFlightReader()
        reader.append(TLSBytes.record(TLSBytes.handshake(2, serverHello)) + TLSBytes.record([1], type: 20))
        #expect({ if case .serverHello = reader.next() { true } else { false } }())
        #expect(reader.next() == .certificateHidden)
        // An anonymous or PSK suite: ServerHelloDone with no Certificate.
        reader = TLSServerFlightReader()
        reader.append(TLSBytes.record(TLSBytes.handshake(2, serverHello) + TLSBytes.handshake(14, [])))
        _ = reader.next()
        #expect(reader.next() == .certificateHidden)
        // Application data before anything else; an alert instead of a ServerHello.
        reader = TLSServerFlightReader()
        reader.append(TLSBytes.record([1, 2, 3], type: 23))
        #expect(reader.next() == .failed(TLSParseError(.notHandshake, at: 0)))
        reader = TLSServerFlightReader()
        reader.append(TLSBytes.record([2, 0, 0, 1, 0]) + TLSBytes.record([2, 40], type: 21))
        #expect({ if case .failed = reader.next() { true } else { false } }())
        // A warning alert (unrecognized_name, as OpenSSL sends it) before the ServerHello is skipped;
        // a warning close_notify is not.
        reader = TLSServerFlightReader()
        reader.append(TLSBytes.record([1, 112], type: 21) + TLSBytes.record(TLSBytes.handshake(2, serverHello)))
        #expect({ if case .serverHello = reader.next() { true } else { false } }())
        reader = TLSServerFlightReader()
        reader.append(TLSBytes.record([1, 0], type: 21))
        #expect({ if case .failed = reader.next() { true } else { false } }())
        // A bad certificate list: a zero-length certificate.
        reader = TLSServerFlightReader()
        let emptyCertificate = TLSBytes.handshake(11, TLSBytes.vector(3, [0, 0, 0]))
        reader.append(TLSBytes.record(TLSBytes.handshake(2, serverHello) + emptyCertificate))
        _ = reader.next()
        #expect(reader.next() == .failed(TLSParseError(.badLength, at: 3)))
    }

    @Test func malformedClientHellos() {
        func bodyReason(_ body: [UInt8]) -> TLSParseError.Reason? {
            do { _ = try TLSClientHello(parsing: body); return nil } catch { return error.reason }
        }
        #expect(bodyReason(TLSBytes.clientHelloBody(extensions: nil)) == nil)  // TLS 1.2 without extensions
        #expect(bodyReason(TLSBytes.clientHelloBody(sessionID: [UInt8](repeating: 0, count: 33))) == .badLength)
        #expect(bodyReason(TLSBytes.clientHelloBody(suites: [0x13])) == .badLength)
        #expect(bodyReason(TLSBytes.clientHelloBody(suites: [])) == .badLength)
        #expect(bodyReason(TLSBytes.clientHelloBody(compression: [])) == .badLength)
        #expect(bodyReason(TLSBytes.clientHelloBody() + [0]) == .trailingBytes)
        #expect(helloReason([TLSBytes.ext(5, []), TLSBytes.ext(5, [])]) == .duplicateExtension)
        #expect(helloReason([TLSBytes.ext(43, [3, 3, 4, 0])]) == .badLength)        // odd version list
        #expect(helloReason([TLSBytes.ext(43, [2, 3, 4, 0])]) == .trailingBytes)
        #expect(helloReason([TLSBytes.ext(51, TLSBytes.vector(2, [0, 0x1D, 0, 0]))]) == .badLength)  // empty key
        #expect(helloReason([TLSBytes.ext(16, TLSBytes.vector(2, [0]))]) == .badLength)             // empty ALPN name
        #expect(helloReason([TLSBytes.ext(16, TLSBytes.vector(2, [5, 0x68]))]) == .truncated)
        #expect(helloReason([TLSBytes.ext(0, TLSBytes.vector(2, []))]) == .badLength)
        #expect(helloReason([[0, 0, 0, 9, 0]]) == .truncated)  // extension length past the block
    }

    @Test func serverNameValidation() throws {
        #expect(try hello([TLSBytes.sni("API.Example.COM")]).serverName == "api.example.com")
        #expect(try hello([TLSBytes.sni("_srv.xn--bcher-kva.example")]).serverName == "_srv.xn--bcher-kva.example")
        #expect(try hello([TLSBytes.sni("localhost")]).serverName == "localhost")
        #expect(try hello([TLSBytes.sni("1.example")]).serverName == "1.example")
        #expect(try hello([TLSBytes.sni("example.0xg")]).serverName == "example.0xg")
        for literal in ["192.0.2.1", "127.1", "0x7f000001", "example.123", "example.0x1F", "::1", "[2001:db8::1]"] {
            #expect(helloReason([TLSBytes.sni(literal)]) == .serverNameIsIPLiteral, "\(literal)")
        }
        for bad in ["example.com.", "a..b", ".a", "exa*mple.com", "a/b", String(repeating: "x", count: 64) + ".com",
                    ([String](repeating: "abcdefghi", count: 26)).joined(separator: ".")] {
            #expect(helloReason([TLSBytes.sni(bad)]) == .serverNameInvalid, "\(bad)")
        }
        for bad in ["exa mple.com", "bücher.example", "a\u{0}b.com"] {
            #expect(helloReason([TLSBytes.sni(bad)]) == .serverNameNotASCII, "\(bad)")
        }
        let twoNames = TLSBytes.sni([(0, Array("a.com".utf8)), (0, Array("b.com".utf8))])
        #expect(helloReason([twoNames]) == .duplicateServerName)
        #expect(helloReason([TLSBytes.sni([(1, Array("a.com".utf8))])]) == .unknownServerNameType)
        #expect(helloReason([TLSBytes.sni([(0, [])])]) == .serverNameInvalid)
        let ech = try hello([TLSBytes.sni("public.example"), TLSBytes.ext(0xFE0D, [0, 0, 1, 0, 1])])
        #expect(ech.hasEncryptedClientHello && ech.serverName == "public.example")
    }

    @Test func everyTruncationOfCapturedMessages() throws {
        for name in TLSCaptureTests.clientCases {
            let stream = Fixture.stream("tls/\(name).c2s.hex")
            var reader = TLSHandshakeReader(limits: .clientHello)
            reader.append(stream)
            guard case .message(let message) = reader.next() else { Issue.record("\(name)"); continue }
            let body = message.body
            // The one legal cut: right before the extensions block, a TLS 1.2 hello without extensions.
            let sessionLength = Int(body[34])
            let suitesLength = Int(body[35 + sessionLength]) << 8 | Int(body[36 + sessionLength])
            let extensionsStart = 37 + sessionLength + suitesLength + 1 + Int(body[37 + sessionLength + suitesLength])
            for length in 0..<body.count where length != extensionsStart {
                #expect(throws: TLSParseError.self, "\(name) cut at \(length)") {
                    try TLSClientHello(parsing: Array(body.prefix(length)))
                }
            }
            // Cut streams never fail: they wait.
            let end = 4 + body.count + 5 * ((4 + body.count + 511) / 512) + 5
            for length in stride(from: 0, to: min(stream.count, end), by: 7) {
                var r = TLSClientHelloReader()
                let result = r.feed(stream.prefix(length))
                #expect(result == .needMoreData || { if case .clientHello = result { true } else { false } }())
            }
        }
        for name in ["tls12-sni", "tls12-split-records"] {
            var reader = TLSHandshakeReader(limits: .serverFlight)
            reader.append(Fixture.stream("tls/\(name).s2c.hex"))
            var bodies: [(UInt8, [UInt8])] = []
            while case .message(let m) = reader.next() { bodies.append((m.type, m.body)) }
            for (type, body) in bodies where type == 2 || type == 11 {
                for length in 0..<body.count {
                    if type == 2 {
                        _ = try? TLSServerHello(parsing: Array(body.prefix(length)))
                    } else {
                        #expect(throws: TLSParseError.self) {
                            try TLSCertificateList(parsing: Array(body.prefix(length)))
                        }
                    }
                }
            }
        }
    }

    /// Mutated streams fed in random chunks must give the same result as fed whole (the reader is truly
    /// incremental), and nothing may trap.
    @Test func mutationFuzzNeverTraps() throws {
        var rng = SeededGenerator(seed: 0x7157_F022)
        let clientStreams = TLSCaptureTests.clientCases.map { Array(Fixture.stream("tls/\($0).c2s.hex").prefix(2_200)) }
        let serverStreams = TLSCaptureTests.clientCases.map { Array(Fixture.stream("tls/\($0).s2c.hex").prefix(6_000)) }
        var hellos = 0
        for iteration in 0..<6_000 {
            let input = mutate(clientStreams[iteration % clientStreams.count], using: &rng)
            var whole = TLSClientHelloReader()
            let expected = whole.feed(input)
            if case .clientHello = expected { hellos += 1 }
            var chunked = TLSClientHelloReader()
            var offset = 0
            var result = TLSClientHelloResult.needMoreData
            while offset < input.count, result == .needMoreData {
                let size = Int.random(in: 1...600, using: &rng)
                result = chunked.feed(input[offset..<min(offset + size, input.count)])
                offset += size
            }
            #expect(result == expected)
        }
        #expect(hellos > 500)
        for iteration in 0..<3_000 {
            let input = mutate(serverStreams[iteration % serverStreams.count], using: &rng)
            var reader = TLSServerFlightReader()
            reader.append(input)
            for _ in 0..<8 where reader.next() == .needMoreData { break }
        }
        // Message bodies directly, past the record layer.
        var bodies: [[UInt8]] = []
        for stream in clientStreams + serverStreams {
            var reader = TLSHandshakeReader(limits: .serverFlight)
            reader.append(stream)
            while case .message(let m) = reader.next() { bodies.append(m.body) }
        }
        for iteration in 0..<20_000 {
            let body = mutate(bodies[iteration % bodies.count], using: &rng)
            _ = try? TLSClientHello(parsing: body)
            _ = try? TLSServerHello(parsing: body)
            _ = try? TLSCertificateList(parsing: body)
        }
    }
}

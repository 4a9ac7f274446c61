// Real handshakes captured from openssl s_client/s_server and curl (Fixtures/tls, see Fixtures/README.md):
// ClientHellos of TLS 1.2 and 1.3 with and without SNI, a large ClientHello over five records, server
// flights with the certificate chain in clear (TLS 1.2) or hidden (TLS 1.3), and a HelloRetryRequest.
import Testing
@testable import SluiceWire

@Suite struct TLSCaptureTests {
    static let clientCases = ["tls13-sni", "tls12-sni", "tls13-nosni", "tls12-nosni", "curl-tls13", "curl-tls12",
                              "large-clienthello", "tls12-split-records", "tls13-hrr"]

    func clientHello(_ name: String) throws -> TLSClientHello {
        var reader = TLSClientHelloReader()
        guard case .clientHello(let hello) = reader.feed(Fixture.stream("tls/\(name).c2s.hex")) else {
            Issue.record("no ClientHello in \(name)")
            throw TLSParseError(.truncated, at: 0)
        }
        return hello
    }

    func serverEvents(_ name: String) -> [TLSServerFlightEvent] {
        var reader = TLSServerFlightReader()
        var events: [TLSServerFlightEvent] = []
        for chunk in Fixture.chunks("tls/\(name).s2c.hex") {
            reader.append(chunk)
            loop: while true {
                let event = reader.next()
                switch event {
                case .needMoreData: break loop
                case .serverHello: events.append(event)
                default:
                    events.append(event)
                    return events
                }
            }
        }
        return events
    }

    static let tls13: UInt16 = 0x0304
    static let x25519: UInt16 = 0x001D

    @Test func tls13WithSNIAndALPN() throws {
        let hello = try clientHello("tls13-sni")
        #expect(hello.serverName == "tls.sluice.test")
        #expect(hello.alpnProtocolNames == ["h2", "http/1.1"])
        #expect(hello.supportedVersions == [Self.tls13])
        #expect(hello.maximumOfferedVersion == Self.tls13)
        #expect(hello.keyShareGroups == [Self.x25519])
        #expect(hello.legacyVersion == 0x0303)
        #expect(hello.random.count == 32)
        #expect(hello.sessionID.count == 32)  // middlebox compatibility mode
        #expect(hello.cipherSuites.contains(0x1301))
        #expect(!hello.hasEncryptedClientHello)
        #expect(hello.extensionTypes.first == TLSExtensionType.serverName)
    }

    @Test func withoutSNI() throws {
        #expect(try clientHello("tls13-nosni").serverName == nil)
        let hello = try clientHello("tls12-nosni")
        #expect(hello.serverName == nil)
        #expect(!hello.extensionTypes.contains(TLSExtensionType.serverName))
        #expect(hello.supportedVersions.isEmpty)
        #expect(hello.maximumOfferedVersion == 0x0303)
    }

    @Test func curlClientHellos() throws {
        for name in ["curl-tls13", "curl-tls12"] {
            let hello = try clientHello(name)
            #expect(hello.serverName == "tls.sluice.test")
            #expect(hello.alpnProtocolNames == ["http/1.1"])
        }
        #expect(try clientHello("curl-tls13").supportedVersions.contains(Self.tls13))
    }

    @Test func largeClientHelloOverFiveRecords() throws {
        let stream = Fixture.stream("tls/large-clienthello.c2s.hex")
        // The handshake message is longer than one 512-byte record: count the records it took.
        var offset = 0, records = 0, handshakeBytes = 0
        while handshakeBytes < 4 + 0x837, offset + 5 <= stream.count, stream[offset] == 22 {
            let length = Int(stream[offset + 3]) << 8 | Int(stream[offset + 4])
            #expect(length <= 512)
            handshakeBytes += length
            offset += 5 + length
            records += 1
        }
        #expect(records == 5)
        let hello = try clientHello("large-clienthello")
        let expectedLength = 233 + ".sluice.test".count  // 60 + 60 + 60 + 50 characters and three dots
        #expect(hello.serverName?.count == expectedLength)
        #expect(hello.serverName?.hasSuffix(".gggggggggggggggggggggggggggggggggggggggggggggggggg.sluice.test") == true)
        #expect(hello.alpnProtocols.count == 61)
        #expect(hello.alpnProtocolNames.last == "h2")
        #expect(hello.keyShareGroups == [Self.x25519])
        #expect(hello.cipherSuites.count > 50)  // ALL:@SECLEVEL=0 plus the TLS 1.3 suites
    }

    @Test(arguments: clientCases) func everySplitPointGivesTheSameClientHello(_ name: String) throws {
        let stream = Fixture.stream("tls/\(name).c2s.hex")
        var whole = TLSClientHelloReader()
        let expected = whole.feed(stream)
        guard case .clientHello = expected else {
            Issue.record("\(name): \(expected)")
            return
        }
        // Every two-segment split, as a TCP stream might deliver it.
        for split in 1..<min(stream.count, 2_400) {
            var reader = TLSClientHelloReader()
            let first = reader.feed(stream[0..<split])
            if case .failed = first { Issue.record("\(name) failed at split \(split)") }
            let second = reader.feed(stream[split...])
            #expect(second == expected, "\(name) split at \(split)")
        }
        // One byte at a time: needMoreData until the last byte of the ClientHello, never a failure.
        var reader = TLSClientHelloReader()
        var result = TLSClientHelloResult.needMoreData
        for byte in stream {
            result = reader.feed([byte])
            if result != .needMoreData { break }
        }
        #expect(result == expected)
    }

    @Test func tls12ServerShowsItsChain() throws {
        let leaf = Fixture.stream("tls/cert-leaf.der.hex")
        let intermediate = Fixture.stream("tls/cert-int.der.hex")
        let root = Fixture.stream("tls/cert-root.der.hex")
        for name in ["tls12-sni", "tls12-nosni", "curl-tls12", "tls12-split-records"] {
            let events = serverEvents(name)
            #expect(events.count == 2, "\(name)")
            guard events.count == 2, case .serverHello(let hello) = events[0],
                  case .certificates(let list) = events[1]
            else { continue }
            #expect(hello.negotiatedVersion == 0x0303)
            #expect(hello.selectedVersion == nil)
            #expect(!hello.hidesCertificate && !hello.isHelloRetryRequest)
            #expect(list.certificates.map(Array.init) == [leaf, intermediate, root], "\(name)")
            #expect(list.leaf.map(Array.init) == leaf)
        }
        if case .serverHello(let hello) = serverEvents("tls12-sni").first {
            #expect(hello.alpnProtocol == Array("h2".utf8))
        }
    }

    @Test func tls12CertificateSpansRecords() {
        let stream = Fixture.stream("tls/tls12-split-records.s2c.hex")
        var offset = 0, records = 0
        while offset + 5 <= stream.count, stream[offset] == 22 {
            #expect(Int(stream[offset + 3]) << 8 | Int(stream[offset + 4]) <= 512)
            offset += 5 + (Int(stream[offset + 3]) << 8 | Int(stream[offset + 4]))
            records += 1
        }
        #expect(records >= 8)  // three ~900-byte certificates in 512-byte records
    }

    @Test func tls13HidesTheCertificate() {
        for name in ["tls13-sni", "tls13-nosni", "curl-tls13", "large-clienthello"] {
            let events = serverEvents(name)
            #expect(events.count == 2, "\(name)")
            guard events.count == 2, case .serverHello(let hello) = events[0] else { continue }
            #expect(hello.selectedVersion == Self.tls13)
            #expect(hello.negotiatedVersion == Self.tls13)
            #expect(hello.legacyVersion == 0x0303)
            #expect(hello.keyShareGroup == Self.x25519)
            #expect(events[1] == .certificateHidden)
        }
    }

    @Test func helloRetryRequest() throws {
        let events = serverEvents("tls13-hrr")
        #expect(events.count == 3)
        guard events.count == 3, case .serverHello(let retry) = events[0], case .serverHello(let hello) = events[1]
        else { return }
        #expect(retry.isHelloRetryRequest)
        #expect(retry.keyShareGroup == Self.x25519)
        #expect(!hello.isHelloRetryRequest)
        #expect(hello.negotiatedVersion == Self.tls13)
        #expect(events[2] == .certificateHidden)

        // The client side: first ClientHello offers a P-256 share; after the retry (and a compatibility
        // change_cipher_spec) the second offers X25519.
        let first = try clientHello("tls13-hrr")
        #expect(first.keyShareGroups == [0x0017])
        var reader = TLSHandshakeReader(limits: .clientHello)
        reader.append(Fixture.stream("tls/tls13-hrr.c2s.hex"))
        var hellos: [TLSClientHello] = []
        var sawCCS = false
        loop: while true {
            switch reader.next() {
            case .message(let message) where message.type == TLSHandshakeMessage.clientHello:
                hellos.append(try TLSClientHello(parsing: message.body))
            case .changeCipherSpec:
                sawCCS = true
            default:
                break loop
            }
            if hellos.count == 2 { break }
        }
        #expect(sawCCS)
        #expect(hellos.map(\.keyShareGroups) == [[0x0017], [Self.x25519]])
        #expect(hellos.allSatisfy { $0.serverName == "tls.sluice.test" })
    }
}

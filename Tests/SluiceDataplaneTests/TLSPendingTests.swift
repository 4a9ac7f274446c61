// The TLS-pending state of the packet processor on frames built in memory (no root, no rings):
// handshake packets pass, the decision is made on the reassembled ClientHello (SNI) or on the
// server's Certificate (SAN, CN, DN, fingerprint, trust anchors) or its absence (TLS 1.3),
// client data is held until then, and split, reordered, retransmitted, oversized, garbage,
// slow and surplus handshakes are handled or denied (fail closed, counted by reason).

import Crypto
import Foundation
import SluicePacket
import SluicePolicy
import SluicePolicyGen
import Testing
import X509
@testable import SluiceDataplane

/// Hand-made TLS handshake bytes.
enum Handshake {
    static func vector(_ prefix: Int, _ bytes: [UInt8]) -> [UInt8] {
        let n = bytes.count
        let length: [UInt8] = prefix == 1 ? [UInt8(truncatingIfNeeded: n)]
            : prefix == 2 ? [UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
            : [UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
        return length + bytes
    }

    static func ext(_ type: UInt16, _ data: [UInt8]) -> [UInt8] {
        [UInt8(type >> 8), UInt8(type & 0xFF)] + vector(2, data)
    }

    /// Handshake messages in records of at most `recordSize` bytes.
    static func records(_ message: [UInt8], recordSize: Int = 16_384) -> [UInt8] {
        stride(from: 0, to: message.count, by: recordSize).flatMap { start in
            [22, 3, 3] + vector(2, Array(message[start..<min(start + recordSize, message.count)]))
        }
    }

    /// A ClientHello record (SNI if given, TLS 1.2 and 1.3 offered, `padding` bytes of a dummy
    /// key share to make it as large as post-quantum ones are).
    static func clientHello(sni: String?, padding: Int = 0) -> [UInt8] {
        var extensions: [[UInt8]] = [ext(43, vector(1, [3, 4, 3, 3]))]
        if let sni { extensions.append(ext(0, vector(2, [0] + vector(2, Array(sni.utf8))))) }
        if padding > 0 { extensions.append(ext(21, [UInt8](repeating: 0, count: padding))) }
        var body: [UInt8] = [3, 3] + [UInt8](repeating: 0xAB, count: 32) + vector(1, [])
        body += vector(2, [0x13, 0x01, 0xC0, 0x2F]) + vector(1, [0]) + vector(2, extensions.flatMap { $0 })
        return records([1] + vector(3, body))
    }

    static let retryRandom: [UInt8] = [
        0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
        0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
    ]

    static func serverHello(tls13: Bool, retry: Bool = false) -> [UInt8] {
        var body: [UInt8] = [3, 3] + (retry ? retryRandom : [UInt8](repeating: 0x5A, count: 32)) + vector(1, [])
        body += tls13 ? [0x13, 0x01, 0] : [0xC0, 0x2F, 0]
        body += vector(2, tls13 ? ext(43, [3, 4]) : [])
        return [2] + vector(3, body)
    }

    /// ServerHello (TLS 1.2) and Certificate with `chain` (DER, leaf first), in one record stream.
    static func serverFlight(chain: [[UInt8]]) -> [UInt8] {
        let certificate = [11] + vector(3, vector(3, chain.flatMap { vector(3, $0) }))
        return records(serverHello(tls13: false) + certificate)
    }
}

/// A CA and a leaf it signed, made in memory.
struct TestPKI {
    let caPEM: String
    let leafDER: [UInt8]
    let caDER: [UInt8]

    init(names: [String], commonName: String) throws {
        let now = Date()
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("Sluice Test CA") }
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(3600),
            issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true))
            }, issuerPrivateKey: .init(caKey))
        let leafKey = P256.Signing.PrivateKey()
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(leafKey.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(3600),
            issuer: caName, subject: try DistinguishedName { OrganizationName("Example Corp"); CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                SubjectAlternativeNames(names.map { .dnsName($0) })
            }, issuerPrivateKey: .init(caKey))
        caPEM = try ca.serializeAsPEM().pemString
        leafDER = try leaf.serializeAsPEM().derBytes
        caDER = try ca.serializeAsPEM().derBytes
    }

    var fingerprint: String { SHA256.hash(data: leafDER).map { String(format: "%02x", $0) }.joined() }
}

/// One TCP connection through the harness, with real sequence numbers.
struct Connection {
    let gateway: ProcessorHarness
    var client = Frames.tcp(sourcePort: 41000, flags: .syn)
    let clientISN: UInt32 = 0xFFFF_FF00  // wraps during the handshake
    let serverISN: UInt32 = 7000

    init(_ gateway: ProcessorHarness, port: UInt16 = 41000, v6: Bool = false) {
        self.gateway = gateway
        client = v6 ? Frames.tcp(from: Topology.client6, to: Topology.server6, sourcePort: port, flags: .syn, v6: true)
            : Frames.tcp(sourcePort: port, flags: .syn)
    }

    @discardableResult
    func open(at time: Double = 0) -> (PacketDecision, PacketDecision) {
        var syn = client
        syn.sequenceNumber = clientISN
        let first = gateway.send(syn, from: .inside, at: time, payload: [])
        var synAck = Frames.reply(client, flags: [.syn, .ack])
        synAck.sequenceNumber = serverISN
        return (first, gateway.send(synAck, from: .outside, at: time, payload: []))
    }

    @discardableResult
    func clientSends(_ bytes: [UInt8], at offset: Int, time: Double = 0.1) -> PacketDecision {
        var segment = client
        segment.tcpFlags = [.ack, .psh]
        segment.sequenceNumber = clientISN &+ 1 &+ UInt32(offset)
        return gateway.send(segment, from: .inside, at: time, payload: bytes)
    }

    @discardableResult
    func serverSends(_ bytes: [UInt8], at offset: Int, time: Double = 0.1) -> PacketDecision {
        var segment = Frames.reply(client, flags: [.ack, .psh])
        segment.sequenceNumber = serverISN &+ 1 &+ UInt32(offset)
        return gateway.send(segment, from: .outside, at: time, payload: bytes)
    }

    /// Sends `bytes` from the client in segments of `size`, in the given order of segment indexes.
    func clientSegments(_ bytes: [UInt8], size: Int, order: [Int]? = nil) -> [PacketDecision] {
        let starts = Array(stride(from: 0, to: bytes.count, by: size))
        return (order ?? Array(starts.indices)).map { index in
            clientSends(Array(bytes[starts[index]..<min(starts[index] + size, bytes.count)]), at: starts[index])
        }
    }

    var flow: FlowEntry? { gateway.flows.entry(client.tuple) }
}

enum TLSPolicies {
    static func sni(_ matcher: String, mode: String = "enforce", extra: String = "") -> String {
        """
        {"mode": "\(mode)", "policy": {"default_policy": "deny", "source_groups": [
          {"id": "clients", "sources": {"cidrs": ["10.0.0.0/24"]}, "rules": [
            {"id": "api", "action": "allow", "match": {"proto": "tcp", "dst_ports": [443],
              "tls": {"sni": \(matcher)\(extra)}}}
          ]}]}}
        """
    }

    static func certificate(_ tls: String) -> String {
        """
        {"mode": "enforce", "policy": {"default_policy": "deny", "source_groups": [
          {"id": "clients", "sources": {"cidrs": ["10.0.0.0/24"]}, "rules": [
            {"id": "pinned", "action": "allow", "match": {"proto": "tcp", "dst_ports": [443], "tls": \(tls)}}
          ]}]}}
        """
    }
}

@Suite(.serialized) struct TLSPendingTests {
    func gateway(_ policy: String, tls: TLSInspectorConfiguration = ProcessorHarness.smallTLS) throws
        -> ProcessorHarness
    {
        ProcessorHarness(policy: try compilePolicy(policy), tls: tls)
    }

    @Test func allowedSNIIsForwardedAndTheFlowDecided() throws {
        let gateway = try gateway(TLSPolicies.sni(#"["api.example.com"]"#))
        let connection = Connection(gateway)
        let (syn, synAck) = connection.open()
        #expect(syn.action == .forward(.outside) && synAck.action == .forward(.inside))
        #expect(connection.flow?.isTLSPending == true)
        #expect(gateway.count(.tlsPending) == 1)
        #expect(connection.clientSends(Handshake.clientHello(sni: "API.example.com"), at: 0).action == .forward(.outside))
        #expect(gateway.count(.tlsAllowed) == 1)
        #expect(connection.flow?.isTLSPending == false)
        #expect(gateway.tls.serverName(for: connection.client.tuple) == "api.example.com")  // names are lower-cased
        #expect(gateway.tls.pendingCount == 0)
        // Decided: application data flows normally, without the inspector.
        #expect(connection.clientSends([23, 3, 3, 0, 1, 0], at: 4000).action == .forward(.outside))
        #expect(gateway.count(.tlsHeldPackets) == 0)
    }

    @Test func ipv6FlowsAreInspectedTheSameWay() throws {
        let gateway = try gateway(TLSPolicies.sni(#"["api.example.com"]"#).replacingOccurrences(
            of: #"["10.0.0.0/24"]"#, with: #"["10.0.0.0/24", "fd00::/64"]"#))
        let allowed = Connection(gateway, port: 41000, v6: true)
        allowed.open()
        #expect(allowed.clientSends(Handshake.clientHello(sni: "api.example.com"), at: 0).action == .forward(.outside))
        let denied = Connection(gateway, port: 41001, v6: true)
        denied.open()
        #expect(denied.clientSends(Handshake.clientHello(sni: "www.example.com"), at: 0).action == .reset(.tlsDenied, bothEnds: true))
        #expect(gateway.count(.tlsAllowed) == 1 && gateway.count(.tlsDenied) == 1)
    }

    @Test func deniedSNIIsCutAndRecorded() throws {
        let gateway = try gateway(TLSPolicies.sni(#"".*\\.example\\.com""#))
        let connection = Connection(gateway)
        connection.open()
        let hello = connection.clientSends(Handshake.clientHello(sni: "evil.example.net"), at: 0)
        #expect(hello.action == .reset(.tlsDenied, bothEnds: true))
        #expect(connection.flow == nil)
        let events = gateway.drainEvents().filter { $0.kind == .tls }
        #expect(events.count == 1 && events[0].enforced && events[0].tuple == connection.client.tuple)
        #expect(gateway.tls.record(for: connection.client.tuple)?.allowed == false)
        #expect(gateway.tls.serverName(for: connection.client.tuple) == "evil.example.net")
        // The client's retransmission finds no flow: it is judged again from the record, denied again.
        #expect(connection.clientSends(Handshake.clientHello(sni: "evil.example.net"), at: 0).action == .reset(.tlsDenied, bothEnds: true))
    }

    @Test func auditModeLetsTheDeniedHandshakeThroughAndRecordsIt() throws {
        let gateway = try gateway(TLSPolicies.sni(#"["api.example.com"]"#, mode: "audit"))
        let connection = Connection(gateway)
        connection.open()
        #expect(connection.clientSends(Handshake.clientHello(sni: "other.example.com"), at: 0).action == .forward(.outside))
        let events = gateway.drainEvents().filter { $0.kind == .tls }
        #expect(events.count == 1 && !events[0].enforced)
        #expect(connection.flow?.isTLSPending == false)
    }

    @Test func splitReorderedAndRetransmittedHelloIsReassembled() throws {
        let gateway = try gateway(TLSPolicies.sni(#"["api.example.com"]"#))
        let connection = Connection(gateway)
        connection.open()
        let hello = Handshake.clientHello(sni: "api.example.com", padding: 1800)  // > one segment
        let segment = 500
        // Segment 2 before anything: the record's length is unknown, so it waits (kept, though).
        #expect(connection.clientSegments(hello, size: segment, order: [2])[0].action == .drop(.tlsHeldPackets))
        // Then 0, 0 again (retransmitted), 3 (inside the announced record), then 1 completes it.
        let decisions = connection.clientSegments(hello, size: segment, order: [0, 0, 3])
        #expect(decisions.allSatisfy { $0.action == .forward(.outside) })
        // Bytes beyond the announced record with a gap before them are not the hello: held.
        #expect(connection.clientSends([23, 3, 3, 0, 1, 0], at: hello.count + 100).action == .drop(.tlsHeldPackets))
        #expect(gateway.count(.tlsAllowed) == 0 && connection.flow?.isTLSPending == true)
        #expect(connection.clientSends(Array(hello[500..<1000]), at: 500).action == .forward(.outside))
        #expect(gateway.count(.tlsAllowed) == 1 && connection.flow?.isTLSPending == false)
        // Handshake split across records as well.
        let gateway2 = try self.gateway(TLSPolicies.sni(#"["api.example.com"]"#))
        let second = Connection(gateway2)
        second.open()
        var message = Array(hello.dropFirst(5))
        message = Handshake.records(message, recordSize: 300)
        #expect(second.clientSegments(message, size: 700).allSatisfy { $0.action == .forward(.outside) })
        #expect(gateway2.count(.tlsAllowed) == 1)
    }

    @Test func overflowGarbageTimeoutAndPoolFullFailClosed() throws {
        var tiny = ProcessorHarness.smallTLS
        tiny.clientBufferBytes = 256
        tiny.maxPendingFlows = 1
        let policy = TLSPolicies.sni(#"["api.example.com"]"#)

        let overflow = try gateway(policy, tls: tiny)
        let big = Connection(overflow)
        big.open()
        let results = big.clientSegments(Handshake.clientHello(sni: "api.example.com", padding: 600), size: 200)
        #expect(results.contains { $0.action == .reset(.tlsFailedOverflow, bothEnds: true) })
        #expect(overflow.count(.tlsFailedOverflow) == 1 && big.flow == nil)
        #expect(overflow.drainEvents().contains { $0.kind == .tls && $0.enforced })

        let garbage = try gateway(policy)
        let http = Connection(garbage)
        http.open()
        #expect(http.clientSends(Array("GET / HTTP/1.1\r\n\r\n".utf8), at: 0).action == .reset(.tlsFailedGarbage, bothEnds: true))
        #expect(http.flow == nil)

        let slow = try gateway(policy)
        let late = Connection(slow)
        late.open()
        let hello = Handshake.clientHello(sni: "api.example.com")
        #expect(late.clientSends(Array(hello[0..<50]), at: 0, time: 1).action == .forward(.outside))
        #expect(late.clientSends(Array(hello[50...]), at: 50, time: 12).action == .reset(.tlsFailedTimeout, bothEnds: true))

        let full = try gateway(policy, tls: tiny)
        Connection(full, port: 41000).open()
        let (second, _) = Connection(full, port: 41001).open()
        #expect(second.action == .reset(.tlsFailedPoolFull, bothEnds: true))
        // Mid-stream pickup: a pending flow whose SYN was never seen.
        let unseen = try gateway(policy)
        let midstream = Connection(unseen)
        #expect(midstream.clientSends(hello, at: 0).action == .reset(.tlsFailedUnseen, bothEnds: true))
    }

    @Test func certificateRuleHoldsClientDataUntilTheServerCertificate() throws {
        let pki = try TestPKI(names: ["api.example.com", "www.example.com"], commonName: "api.example.com")
        let policy = TLSPolicies.certificate(#"{"sni": ["api.example.com"], "server_san": ["www.example.com"]}"#)
        let gateway = try gateway(policy)
        let connection = Connection(gateway)
        connection.open()
        let hello = Handshake.clientHello(sni: "api.example.com")
        #expect(connection.clientSends(hello, at: 0).action == .forward(.outside))
        #expect(connection.flow?.isTLSPending == true)
        // Data beyond the hello waits; a retransmitted hello still passes.
        #expect(connection.clientSends([20, 3, 3, 0, 1, 1], at: hello.count).action == .drop(.tlsHeldPackets))
        #expect(connection.clientSends(hello, at: 0).action == .forward(.outside))
        let flight = Handshake.serverFlight(chain: [pki.leafDER])
        #expect(connection.serverSends(Array(flight[0..<100]), at: 0).action == .forward(.inside))
        #expect(connection.serverSends(Array(flight[100...]), at: 100).action == .forward(.inside))
        #expect(gateway.count(.tlsAllowed) == 1 && connection.flow?.isTLSPending == false)
        let record = try #require(gateway.tls.record(for: connection.client.tuple))
        #expect(record.observation.certificate?.subjectAlternativeNames == ["api.example.com", "www.example.com"])
        #expect(record.observation.certificate?.commonName == "api.example.com")
        #expect(record.observation.certificate?.distinguishedName == "CN=api.example.com,O=Example Corp")
        #expect(record.observation.certificate?.sha256 == pki.fingerprint)
        #expect(connection.clientSends([20, 3, 3, 0, 1, 1], at: hello.count).action == .forward(.outside))
    }

    @Test func certificateMatchersDecideAllowAndDeny() throws {
        let pki = try TestPKI(names: ["api.example.com"], commonName: "api.example.com")
        let other = try TestPKI(names: ["api.example.com"], commonName: "api.example.com")
        let cases: [(tls: String, chain: [[UInt8]], allowed: Bool)] = [
            (#"{"server_cn": "api\\.example\\.com"}"#, [pki.leafDER], true),
            (#"{"server_cn": ["www.example.com"]}"#, [pki.leafDER], false),
            (#"{"server_dn": "cn = api.example.com, o=Example Corp"}"#, [pki.leafDER], true),
            (#"{"fingerprint_sha256": ["\#(pki.fingerprint.uppercased())"]}"#, [pki.leafDER], true),
            (#"{"fingerprint_sha256": ["\#(other.fingerprint)"]}"#, [pki.leafDER], false),
            (#"{"trust_anchors_pem": [\#(jsonString(pki.caPEM))]}"#, [pki.leafDER, pki.caDER], true),
            (#"{"trust_anchors_pem": [\#(jsonString(other.caPEM))]}"#, [pki.leafDER], false),
        ]
        for (index, item) in cases.enumerated() {
            let gateway = try gateway(TLSPolicies.certificate(item.tls))
            let connection = Connection(gateway)
            connection.open()
            connection.clientSends(Handshake.clientHello(sni: "api.example.com"), at: 0)
            let decision = connection.serverSends(Handshake.serverFlight(chain: item.chain), at: 0)
            #expect(decision.action == (item.allowed ? .forward(.inside) : .reset(.tlsDenied, bothEnds: true)), "case \(index)")
        }
    }

    @Test func tls13HidesTheCertificateAndTheRuleSaysWhatThatMeans() throws {
        for (setting, allowed) in [("allow", true), ("deny", false)] {
            let gateway = try gateway(TLSPolicies.certificate(
                #"{"server_san": ["api.example.com"], "tls13_uninspectable": "\#(setting)"}"#))
            let connection = Connection(gateway)
            connection.open()
            connection.clientSends(Handshake.clientHello(sni: "api.example.com"), at: 0)
            let decision = connection.serverSends(Handshake.records(Handshake.serverHello(tls13: true)), at: 0)
            #expect(decision.action == (allowed ? .forward(.inside) : .reset(.tlsDenied, bothEnds: true)))
            #expect(gateway.tls.record(for: connection.client.tuple)?.observation.tls13 == true)
        }
    }

    @Test func aFastOpenSYNCarryingTheHelloIsJudged() throws {
        let gateway = try gateway(TLSPolicies.sni(#"["api.example.com"]"#))
        var syn = Connection(gateway).client
        syn.sequenceNumber = 100
        let decision = gateway.send(syn, from: .inside, payload: Handshake.clientHello(sni: "evil.example.com"))
        #expect(decision.action == .reset(.tlsDenied, bothEnds: true))
    }

    @Test func aHelloRetryRequestLetsTheSecondClientHelloThrough() throws {
        let gateway = try gateway(TLSPolicies.certificate(#"{"server_san": ["x"], "tls13_uninspectable": "allow"}"#))
        let connection = Connection(gateway)
        connection.open()
        let hello = Handshake.clientHello(sni: "api.example.com")
        #expect(connection.clientSends(hello, at: 0).action == .forward(.outside))
        let retry = Handshake.records(Handshake.serverHello(tls13: true, retry: true))
        #expect(connection.serverSends(retry, at: 0).action == .forward(.inside))
        // The second ClientHello (after a change_cipher_spec) passes; the flow is still pending.
        let second = [20, 3, 3, 0, 1, 1] + hello
        #expect(connection.clientSends(second, at: hello.count).action == .forward(.outside))
        #expect(connection.flow?.isTLSPending == true)
        let real = Handshake.records(Handshake.serverHello(tls13: true))
        #expect(connection.serverSends(real, at: retry.count).action == .forward(.inside))
        #expect(gateway.count(.tlsAllowed) == 1 && connection.flow?.isTLSPending == false)
    }

    @Test func aHelloWithoutSNIFailsAnSNIMatcher() throws {
        let gateway = try gateway(TLSPolicies.sni(#"".*""#))
        let connection = Connection(gateway)
        connection.open()
        #expect(connection.clientSends(Handshake.clientHello(sni: nil), at: 0).action == .reset(.tlsDenied, bothEnds: true))
    }

    @Test func aNewPolicyRejudgesDecidedFlowsFromTheirRecord() throws {
        let gateway = try gateway(TLSPolicies.sni(#"["api.example.com"]"#))
        let connection = Connection(gateway)
        connection.open()
        connection.clientSends(Handshake.clientHello(sni: "api.example.com"), at: 0)
        #expect(connection.flow?.isTLSPending == false)
        gateway.policy = try compilePolicy(TLSPolicies.sni(#"["www.example.com"]"#))
        gateway.generation = 2
        #expect(connection.clientSends([23, 3, 3, 0, 1, 0], at: 3000).action == .reset(.tlsDenied, bothEnds: true))
        #expect(connection.flow == nil)
    }
}

/// Randomized: mutated handshakes in random segmentations, orders and retransmissions never trap
/// the inspector, never leave a slot behind once decided, and a mutated hello is never allowed
/// unless its SNI still reads as the allowed name.
@Suite struct TLSPendingFuzzTests {
    @Test func mutatedSegmentedHandshakesAreDecidedOrPendingNeverTrapped() throws {
        var generator = SeededRandom(seed: 0x5EED)
        let policy = try compilePolicy(TLSPolicies.sni(#"["api.example.com"]"#))
        let pristine = Handshake.clientHello(sni: "api.example.com", padding: 700)
        for round in 0..<300 {
            let gateway = ProcessorHarness(policy: policy)
            let connection = Connection(gateway)
            connection.open()
            var hello = pristine
            for _ in 0..<Int(generator.next() % 4) {
                hello[Int(generator.next() % UInt64(hello.count))] = UInt8(truncatingIfNeeded: generator.next())
            }
            if generator.next() % 5 == 0 { hello = Array(hello.prefix(Int(generator.next() % UInt64(hello.count)))) }
            let size = 1 + Int(generator.next() % 400)
            var order = Array(0..<((hello.count + size - 1) / size))
            for index in order.indices.reversed() { order.swapAt(index, Int(generator.next() % UInt64(index + 1))) }
            if let first = order.first, generator.next() % 2 == 0 { order.append(first) }  // a retransmission
            for index in order {
                let start = index * size
                connection.clientSends(Array(hello[start..<min(start + size, hello.count)]), at: start)
            }
            let record = gateway.tls.record(for: connection.client.tuple)
            if let record, record.allowed {
                #expect(record.observation.sni == "api.example.com", "round \(round)")
            }
            if record != nil { #expect(gateway.tls.pendingCount == 0, "round \(round): a decided flow kept its slot") }
        }
    }
}

/// `text` as a JSON string literal.
func jsonString(_ text: String) -> String {
    String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
}

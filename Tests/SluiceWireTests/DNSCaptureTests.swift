// Parsing real nsd answers and kdig queries (Fixtures/dns, see Fixtures/README.md), following their CNAME
// chains, and building the proxy's own replies to them.
import Testing
@testable import SluiceWire

@Suite struct DNSCaptureTests {
    static let udpCases = ["a-www", "aaaa-www", "a-mixedcase", "cname-alias", "cname-chain", "cname-loop",
                           "cname-outside", "nxdomain", "mx", "noedns", "dnssec-cookie-nsid", "txt-truncated"]

    func exchange(_ name: String) throws -> (query: DNSMessage, response: DNSMessage) {
        let query = try #require(Fixture.chunks("dns/\(name).c2s.hex").first)
        let response = try #require(Fixture.chunks("dns/\(name).s2c.hex").first)
        return (try DNSMessage(parsing: query), try DNSMessage(parsing: response))
    }

    func addresses(_ resolution: DNSResolution) -> [String] {
        resolution.addresses.map { answer in
            switch answer.address {
            case .a(let v): "\(v >> 24).\(v >> 16 & 255).\(v >> 8 & 255).\(v & 255)"
            case .aaaa(let v): String(v, radix: 16)
            default: "?"
            }
        }
    }

    @Test(arguments: udpCases) func everyCaptureParsesAndRoundTrips(_ name: String) throws {
        for direction in ["c2s", "s2c"] {
            let bytes = try #require(Fixture.chunks("dns/\(name).\(direction).hex").first)
            let message = try DNSMessage(parsing: bytes)
            #expect(message.header.isResponse == (direction == "s2c"))
            for compress in [true, false] {
                let again = try DNSMessage(parsing: message.serialized(compressNames: compress))
                #expect(again == message)
            }
            // A query holds one name, so there is nothing to compress differently: identical bytes.
            if direction == "c2s" { #expect(message.serialized() == bytes) }
        }
    }

    @Test func addressAnswers() throws {
        let (query, response) = try exchange("a-www")
        #expect(query.questions == [DNSQuestion(name: try DNSName("www.sluice.test"), type: .a)])
        #expect(response.header.id == query.header.id)
        #expect(response.header.isAuthoritative)
        #expect(response.responseCode == .noError)
        #expect(response.answers.map(\.data) == [.a(0xC000_020A), .a(0xC000_020B)])
        #expect(response.answers.allSatisfy { $0.ttl == 300 && $0.name.text == "www.sluice.test" })
        let resolution = try response.resolveAddresses().get()
        #expect(resolution.chain.isEmpty)
        #expect(addresses(resolution) == ["192.0.2.10", "192.0.2.11"])

        let (_, v6) = try exchange("aaaa-www")
        #expect(v6.answers.map(\.data) == [.aaaa(0x2001_0db8_0000_0000_0000_0000_0000_0010),
                                           .aaaa(0x2001_0db8_0000_0000_0000_0000_0000_0011)])
    }

    @Test func mixedCaseQuestionIsEchoedExactly() throws {
        // kdig lower-cases what it is given, so the capture only shows the plain case; the case-randomised
        // question is made here from the captured one.
        let (captured, response) = try exchange("a-mixedcase")
        #expect(captured.questions[0].name.text == "www.sluice.test")
        #expect(try response.resolveAddresses().get().addresses.count == 2)
        var query = captured
        query.questions[0].name = try DNSName("WwW.SlUiCe.TeSt")
        let reply = try DNSMessage(parsing: query.errorResponse(.nameError).serialized())
        #expect(Array(reply.questions[0].name.labels[0]) == Array("WwW".utf8))
        #expect(reply.questions[0].name.wireBytes == query.questions[0].name.wireBytes)
        #expect(reply.questions[0].name.text == "www.sluice.test")
        // An answer whose owner differs only in case still belongs to the question.
        let answered = query.response(answers: [
            DNSResourceRecord(name: try DNSName("www.sluice.test"), type: .a, ttl: 5, data: .a(1)),
        ])
        #expect(try answered.resolveAddresses().get().addresses.map(\.address) == [.a(1)])
    }

    @Test func cnameChainsCarryTheSmallestTTL() throws {
        let (_, alias) = try exchange("cname-alias")
        let a = try alias.resolveAddresses().get()
        #expect(a.canonicalName.text == "www.sluice.test")
        #expect(a.chain.map(\.ttl) == [120])
        #expect(a.addresses.map(\.ttl) == [300, 300])
        #expect(a.addresses.map(\.chainTTL) == [120, 120])

        let (_, chain) = try exchange("cname-chain")
        let c = try chain.resolveAddresses().get()
        #expect(c.chain.map(\.name.text) == ["chain1.sluice.test", "chain2.sluice.test", "chain3.sluice.test"])
        #expect(c.chain.map(\.ttl) == [600, 90, 300])
        #expect(c.canonicalName.text == "www.sluice.test")
        #expect(addresses(c) == ["20010db8000000000000000000000010", "20010db8000000000000000000000011"])
        #expect(c.addresses.map(\.chainTTL) == [90, 90])
        #expect(chain.resolveAddresses(maxChainLength: 2) == .failure(.chainTooLong))
        #expect(try chain.resolveAddresses(maxChainLength: 3).get().addresses.count == 2)
    }

    @Test func cnameLoopAndOutOfZoneAlias() throws {
        let (_, loop) = try exchange("cname-loop")
        #expect(loop.answers.count == 2)
        #expect(loop.resolveAddresses() == .failure(.loop))

        let (_, outside) = try exchange("cname-outside")
        let o = try outside.resolveAddresses().get()
        #expect(o.canonicalName.text == "www.elsewhere.example")
        #expect(o.addresses.isEmpty)
    }

    @Test func nxdomainWithSOAIsDecompressed() throws {
        let (_, response) = try exchange("nxdomain")
        #expect(response.responseCode == .nameError)
        #expect(response.answers.isEmpty)
        let soa = try #require(response.authorities.first)
        #expect(soa.type == .soa)
        guard case .opaque(let rdata) = soa.data else { Issue.record("SOA not opaque"); return }
        // MNAME and RNAME are written out in full, whatever pointers nsd used, then the five integers.
        let mname = try DNSName("ns1.sluice.test").wireBytes
        let rname = try DNSName("hostmaster.sluice.test").wireBytes
        #expect(Array(rdata.prefix(mname.count + rname.count)) == mname + rname)
        #expect(rdata.count == mname.count + rname.count + 20)
    }

    @Test func mxIsDecompressed() throws {
        let (_, response) = try exchange("mx")
        let mx = try #require(response.answers.first)
        #expect(mx.data == .opaque([0, 10] + (try DNSName("mail.sluice.test").wireBytes)))
    }

    @Test func ednsFields() throws {
        let (plainQuery, plainResponse) = try exchange("noedns")
        #expect(plainQuery.edns == nil)
        #expect(plainResponse.edns == nil)
        #expect(plainQuery.errorResponse(.serverFailure).edns == nil)

        let (query, response) = try exchange("dnssec-cookie-nsid")
        let edns = try #require(query.edns)
        #expect(edns.udpPayloadSize == 4096)
        #expect(edns.dnssecOK)
        #expect(edns.version == 0)
        #expect(Set(edns.options.map(\.code)).isSuperset(of: [3, 10]))  // NSID, COOKIE
        #expect(edns.options.first { $0.code == 10 }?.data.count == 8)   // client cookie
        #expect(response.edns != nil)

        let reply = try DNSMessage(parsing: query.errorResponse(.nameError).serialized())
        #expect(reply.header.id == query.header.id)
        #expect(reply.header.isResponse)
        #expect(reply.header.recursionDesired == query.header.recursionDesired)
        #expect(reply.questions == query.questions)
        #expect(reply.responseCode == .nameError)
        #expect(reply.edns?.dnssecOK == true)
        #expect(reply.edns?.udpPayloadSize == 1232)
        #expect(reply.edns?.options == [])
    }

    @Test func extendedResponseCodeUsesTheOPTRecord() throws {
        let (query, _) = try exchange("dnssec-cookie-nsid")
        let reply = try DNSMessage(parsing: query.errorResponse(.badVersion).serialized())
        #expect(reply.responseCode == .badVersion)
        #expect(reply.header.rcodeLow == 0)
        #expect(reply.edns?.extendedRCodeHigh == 1)
    }

    @Test func truncationOverUDPAndTheFullAnswerOverTCP() throws {
        let (_, udp) = try exchange("txt-truncated")
        #expect(udp.header.isTruncated)
        #expect(udp.answers.isEmpty)

        let query = Array(Fixture.stream("dns/txt-tcp.c2s.hex").dropFirst(2))
        let stream = Fixture.stream("dns/txt-tcp.s2c.hex")
        #expect(stream.count >= 2 && Int(stream[0]) << 8 | Int(stream[1]) == stream.count - 2)
        let tcp = try DNSMessage(parsing: Array(stream.dropFirst(2)))
        #expect(try DNSMessage(parsing: query).questions.first?.type == .txt)
        #expect(!tcp.header.isTruncated)
        #expect(tcp.answers.count == 4)
        #expect(tcp.answers.allSatisfy { $0.type == .txt })

        // Squeezing the full answer into 1232 bytes truncates it the same way nsd did.
        let squeezed = try DNSMessage(parsing: tcp.serialized(maxSize: 1232))
        #expect(squeezed.header.isTruncated)
        #expect(squeezed.answers.isEmpty && squeezed.authorities.isEmpty)
        #expect(squeezed.questions == tcp.questions)
        #expect(squeezed.edns == tcp.edns)
    }

    @Test func builtQueryMatchesKdig() throws {
        let captured = try #require(Fixture.chunks("dns/noedns.c2s.hex").first)
        let parsed = try DNSMessage(parsing: captured)
        var built = DNSMessage.query(id: parsed.header.id, name: try DNSName("api.sluice.test"), type: .a, edns: nil)
        built.header.authenticData = parsed.header.authenticData
        #expect(built.serialized() == captured)
    }

    @Test func formatErrorReplies() {
        #expect(DNSMessage.formatErrorResponse(toUnparsable: [1, 2, 3]) == nil)
        let garbage: [UInt8] = [0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0]
        let formErr: [UInt8] = [0xAB, 0xCD, 0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]
        #expect(DNSMessage.formatErrorResponse(toUnparsable: garbage) == formErr)
        var response = garbage
        response[2] |= 0x80
        #expect(DNSMessage.formatErrorResponse(toUnparsable: response) == nil)
    }

    @Test func unrelatedAddressesAreNotLearned() throws {
        let (query, _) = try exchange("a-www")
        let www = try DNSName("www.sluice.test")
        let evil = try DNSName("bank.example")
        let reply = query.response(answers: [
            DNSResourceRecord(name: evil, type: .a, ttl: 999, data: .a(0x0A00_0001)),
            DNSResourceRecord(name: www, type: .a, ttl: 30, data: .a(0xC000_0201)),
            DNSResourceRecord(name: www, type: .a, dnsClass: .chaos, ttl: 30, data: .a(0x0A00_0002)),
        ])
        let resolution = try DNSMessage(parsing: reply.serialized()).resolveAddresses().get()
        #expect(resolution.addresses.map(\.address) == [.a(0xC000_0201)])
    }

    @Test func conflictingCNAMEsAreRejected() throws {
        let name = try DNSName("x.test")
        let message = DNSMessage.query(id: 1, name: name, type: .a).response(answers: [
            DNSResourceRecord(name: name, type: .cname, ttl: 1, data: .cname(try DNSName("a.test"))),
            DNSResourceRecord(name: name, type: .cname, ttl: 1, data: .cname(try DNSName("b.test"))),
        ])
        #expect(message.resolveAddresses() == .failure(.conflictingCNAME))
        #expect(DNSMessage(header: DNSHeader(id: 1)).resolveAddresses() == .failure(.noQuestion))
    }
}

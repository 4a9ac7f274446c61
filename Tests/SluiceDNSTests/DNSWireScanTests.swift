// The cache-miss path's check of upstream replies on their bytes (DNSWireScan): it must accept exactly
// what DNSMessage(parsing:) accepts (checked on crafted messages and on thousands of seeded mutations of
// them), match replies to queries as dnsReply(_:matches:) does (id, QR, opcode, question), find the
// same addresses through CNAMEs as resolveAddresses(), and the proxy's reply and learning from the
// bytes must equal the parsed path's.
import NIOCore
import SluicePolicy
import SluicePolicyGen
import SluiceWire
import Testing
@testable import SluiceDNS

/// Replies of several shapes: CNAME chains, AAAA, authority NS and SOA, MX and TXT in additional, OPT
/// with options, compressed and not, odd cases, a record of class CH.
private func sampleReplies() throws -> [[UInt8]] {
    let query = DNSMessage.query(id: 0x1234, name: try DNSName("WWW.example.com"), type: .a,
                                 edns: DNSEDNS(udpPayloadSize: 1232, dnssecOK: true,
                                               options: [DNSEDNSOption(code: 10, data: [1, 2, 3, 4, 5, 6, 7, 8])]))
    let name = { (text: String) in try DNSName(text) }
    var chain = query.response(answers: [
        DNSResourceRecord(name: try name("www.EXAMPLE.com"), type: .cname, ttl: 300, data: .cname(try name("a.example.net"))),
        DNSResourceRecord(name: try name("a.example.net"), type: .cname, ttl: 60, data: .cname(try name("b.example.org"))),
        DNSResourceRecord(name: try name("b.example.org"), type: .a, ttl: 900, data: .a(0xC000_0201)),
        DNSResourceRecord(name: try name("B.example.org"), type: .aaaa, ttl: 30, data: .aaaa(0x2001_0db8 << 96 | 7)),
        DNSResourceRecord(name: try name("b.example.org"), type: .a, dnsClass: .chaos, ttl: 9, data: .a(0x0A00_0001)),
        DNSResourceRecord(name: try name("unrelated.test"), type: .a, ttl: 9, data: .a(0x0A00_0002)),
        DNSResourceRecord(name: try name("b.example.org"), type: .a, ttl: 0x8000_0001, data: .a(0xC000_0202)),
    ], authorities: [
        DNSResourceRecord(name: try name("example.org"), type: .ns, ttl: 300, data: .opaque(try name("ns1.example.org").wireBytes)),
    ])
    chain.additionals = [
        DNSResourceRecord(name: try name("example.org"), type: .mx, ttl: 300,
                          data: .opaque([0, 10] + (try name("mail.example.org").wireBytes))),
        DNSResourceRecord(name: try name("example.org"), type: DNSRecordType(rawValue: 16), ttl: 300, data: .opaque([3, 65, 66, 67])),
    ]
    var negative = query.response(code: .nameError, authorities: [
        DNSResourceRecord(name: try name("example.com"), type: .soa, ttl: 600,
                          data: .opaque(try name("ns1.example.com").wireBytes + (try name("host.example.com").wireBytes)
                              + [0, 0, 0, 1, 0, 0, 14, 16, 0, 0, 2, 88, 0, 1, 81, 128, 0, 0, 0, 60])),
    ])
    negative.edns = nil
    let loop = query.response(answers: [
        DNSResourceRecord(name: try name("www.example.com"), type: .cname, ttl: 300, data: .cname(try name("x.test"))),
        DNSResourceRecord(name: try name("x.test"), type: .cname, ttl: 300, data: .cname(try name("WWW.example.com"))),
        DNSResourceRecord(name: try name("x.test"), type: .a, ttl: 300, data: .a(1)),
    ])
    let conflict = query.response(answers: [
        DNSResourceRecord(name: try name("www.example.com"), type: .cname, ttl: 300, data: .cname(try name("x.test"))),
        DNSResourceRecord(name: try name("www.example.com"), type: .cname, ttl: 300, data: .cname(try name("y.test"))),
        DNSResourceRecord(name: try name("x.test"), type: .a, ttl: 300, data: .a(1)),
    ])
    let sameTwice = query.response(answers: [
        DNSResourceRecord(name: try name("www.example.com"), type: .cname, ttl: 300, data: .cname(try name("x.test"))),
        DNSResourceRecord(name: try name("www.example.com"), type: .cname, ttl: 20, data: .cname(try name("X.test"))),
        DNSResourceRecord(name: try name("x.test"), type: .a, ttl: 300, data: .a(1)),
    ])
    var long: [DNSResourceRecord] = []
    var current = try name("www.example.com")
    for index in 0..<17 {
        let next = try name("n\(index).test")
        long.append(DNSResourceRecord(name: current, type: .cname, ttl: 100, data: .cname(next)))
        current = next
    }
    long.append(DNSResourceRecord(name: current, type: .a, ttl: 100, data: .a(5)))
    let tooLong = query.response(answers: long)
    let sixteen = query.response(answers: Array(long.dropFirst(1)).map { record in
        var copy = record
        if copy.name == (try! DNSName("n0.test")) { copy.name = try! DNSName("www.example.com") }
        return copy
    })
    var out: [[UInt8]] = []
    for message in [chain, negative, loop, conflict, sameTwice, tooLong, sixteen] {
        out.append(message.serialized(compressNames: true))
        out.append(message.serialized(compressNames: false))
    }
    return out
}

/// How long a parsed response may be cached, written from RFC 1035/2181/2308 on the message (what the cache
/// computed before it kept bytes): the smallest answer TTL, or for NXDOMAIN and NODATA min(SOA TTL, MINIMUM)
/// of the first SOA in the authority section; nothing for truncated answers, other codes and zero TTLs.
private func referenceCacheTTL(_ response: DNSMessage, _ configuration: DNSCacheConfiguration) -> UInt32? {
    guard !response.header.isTruncated else { return nil }
    if response.responseCode == .noError, !response.answers.isEmpty {
        let ttl = response.answers.map(\.effectiveTTL).min()!
        return ttl == 0 ? nil : min(ttl, configuration.maximumTTLSeconds)
    }
    guard response.responseCode == .noError || response.responseCode == .nameError else { return nil }
    for record in response.authorities where record.type == .soa {
        guard case .opaque(let data) = record.data, data.count >= 4 else { continue }
        let minimum = data.suffix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let ttl = min(record.effectiveTTL, minimum & 0x7FFF_FFFF)
        return ttl == 0 ? nil : min(ttl, configuration.maximumNegativeTTLSeconds)
    }
    return nil
}

@Suite struct DNSWireScanTests {
    @Test func scanAcceptsExactlyWhatTheParserAcceptsAndReadsTheSameHeader() throws {
        var generator = SeededRandom(seed: 0x5EED_D115)  // SplitMix64: a failure reproduces from its seed
        var accepted = 0, rejected = 0
        let cache = DNSAnswerCache()
        for (sampleIndex, sample) in try sampleReplies().enumerated() {
            for round in 0..<600 {
                var bytes = sample
                if round > 0 {
                    // 1-3 mutations: flip a byte, truncate, extend, or bump a count.
                    for _ in 0..<Int.random(in: 1...3, using: &generator) {
                        switch Int.random(in: 0..<6, using: &generator) {
                        case 0, 1, 2:
                            bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255,
                                                                                                       using: &generator)
                        case 3: bytes.removeLast(Int.random(in: 0...min(8, bytes.count), using: &generator))
                        case 4: bytes.append(UInt8.random(in: 0...255, using: &generator))
                        default:
                            if bytes.count >= 12 {
                                let at = 5 + 2 * Int.random(in: 0..<4, using: &generator)
                                bytes[at] = bytes[at] &+ (Bool.random(using: &generator) ? 1 : 255)
                            }
                        }
                        if bytes.isEmpty { break }
                    }
                }
                let scan = DNSWireScan(bytes)
                let parsed = try? DNSMessage(parsing: bytes)
                #expect((scan != nil) == (parsed != nil), "sample \(sampleIndex) round \(round): \(bytes)")
                guard let scan, let parsed else {
                    rejected += 1
                    continue
                }
                accepted += 1
                #expect(scan.id == parsed.header.id && scan.isResponse == parsed.header.isResponse)
                #expect(scan.opcode == parsed.header.opcode && scan.isTruncated == parsed.header.isTruncated)
                #expect(scan.hasOPT == (parsed.edns != nil) && scan.responseCode == parsed.responseCode)
                #expect(scan.questionCount == parsed.questions.count && scan.answerCount == parsed.answers.count)

                // What the proxy reads of a query on its bytes: the question as the cache's key (equal, with
                // the same hash, exactly when the parsed questions are), its name as printed, the OPT record.
                if let question = parsed.questions.first {
                    let key = try #require(DNSQuestionKey(message: bytes), "sample \(sampleIndex) round \(round)")
                    #expect(key == DNSAnswerCache.key(question) && key.hash == DNSAnswerCache.key(question)?.hash)
                    #expect(DNSName.text(ofNameIn: bytes, at: 12) == question.name.text)
                    let original = try DNSMessage(parsing: sample).questions[0]
                    #expect((key == DNSQuestionKey(message: sample)) == (question == original))
                }
                let opt = DNSProxy.clientOPT(bytes, scan)
                #expect(opt?.udpPayloadSize == parsed.edns?.udpPayloadSize && opt?.dnssecOK == parsed.edns?.dnssecOK)

                // Every record walked on the bytes, as parsed (the OPT record is the message's `edns`).
                var walked: [String] = []
                scan.forEachRecord(in: bytes) { record in
                    if record.type != DNSRecordType.opt.rawValue { walked.append("\(record.section) \(record.type) \(record.ttl)") }
                }
                let records = [parsed.answers, parsed.authorities, parsed.additionals].enumerated().flatMap { section, records in
                    records.map { "\(section) \($0.type.rawValue) \($0.effectiveTTL)" }
                }
                #expect(walked == records, "sample \(sampleIndex) round \(round)")
                // The cache's TTL read on the bytes is the one RFC 2308 gives for the parsed message.
                #expect(cache.cacheTTL(of: bytes, scan: scan) == referenceCacheTTL(parsed, cache.configuration),
                        "sample \(sampleIndex) round \(round)")

                // The same addresses through CNAMEs, in the same order, with the same chain TTLs.
                var fromWire: [DNSRecordData] = [], wireTTLs: [UInt32] = []
                let resolved = scan.forEachResolvedAddress(in: bytes) { data, ttl in
                    fromWire.append(data)
                    wireTTLs.append(ttl)
                }
                switch parsed.resolveAddresses() {
                case .success(let resolution):
                    #expect(resolved, "sample \(sampleIndex) round \(round)")
                    #expect(fromWire == resolution.addresses.map(\.address))
                    #expect(wireTTLs == resolution.addresses.map(\.chainTTL))
                case .failure:
                    #expect(!resolved && fromWire.isEmpty, "sample \(sampleIndex) round \(round)")
                }
            }
        }
        // The mutations must exercise both sides, else the comparison proves little.
        #expect(accepted > 1000 && rejected > 1000)
    }

    @Test func knownShapesResolveAsExpected() throws {
        let samples = try sampleReplies()
        func addresses(_ bytes: [UInt8]) -> [DNSRecordData]? {
            var out: [DNSRecordData] = []
            guard let scan = DNSWireScan(bytes), scan.forEachResolvedAddress(in: bytes, { data, _ in out.append(data) })
            else { return nil }
            return out
        }
        // The chain: A and AAAA of b.example.org, class IN only, the TTL with the high bit set as 0.
        #expect(addresses(samples[0]) == [.a(0xC000_0201), .aaaa(0x2001_0db8 << 96 | 7), .a(0xC000_0202)])
        #expect(addresses(samples[1]) == addresses(samples[0]))
        #expect(addresses(samples[4]) == nil && addresses(samples[6]) == nil)  // a loop, conflicting CNAMEs
        #expect(addresses(samples[8]) == [.a(1)])  // the same target twice (case differs) is no conflict
        #expect(addresses(samples[10]) == nil)  // 17 links
        #expect(addresses(samples[12]) == [.a(5)])  // 16 links
    }

    @Test func repliesMustMatchTheQueryIdOpcodeAndQuestion() throws {
        let query = DNSMessage.query(id: 0x4242, name: try DNSName("Api.Example.com"), type: .a)
        let queryBytes = query.serialized()
        let good = query.response(answers: [
            DNSResourceRecord(name: try DNSName("api.example.com"), type: .a, ttl: 60, data: .a(1)),
        ])
        func matches(_ reply: DNSMessage, id: UInt16? = nil) -> Bool {
            let bytes = reply.serialized()
            return DNSWireScan(bytes)?.answers(queryBytes, id: id, in: bytes) == true
        }
        var lower = good
        lower.questions[0].name = try DNSName("API.EXAMPLE.COM")
        #expect(matches(good) && matches(lower))  // the name case-insensitively, as DNSQuestion's ==
        var wrongID = good
        wrongID.header.id = 0x4243
        #expect(!matches(wrongID))
        #expect(matches(wrongID, id: 0x4243) && !matches(good, id: 0x4243))  // the pool's own id counts
        var notResponse = good
        notResponse.header.isResponse = false
        #expect(!matches(notResponse))
        var otherOpcode = good
        otherOpcode.header.opcode = 2
        #expect(!matches(otherOpcode))
        var otherName = good
        otherName.questions[0].name = try DNSName("api.example.org")
        #expect(!matches(otherName))
        var longerName = good
        longerName.questions[0].name = try DNSName("x.api.example.com")
        #expect(!matches(longerName))
        var otherType = good
        otherType.questions[0].type = .aaaa
        #expect(!matches(otherType))
        var otherClass = good
        otherClass.questions[0].dnsClass = .chaos
        #expect(!matches(otherClass))
        var twoQuestions = good
        twoQuestions.questions.append(good.questions[0])
        #expect(!matches(twoQuestions))
        var noQuestion = good
        noQuestion.questions = []
        #expect(!matches(noQuestion))
        // Each agrees with the parsed check.
        for reply in [good, lower, wrongID, notResponse, otherOpcode, otherName, otherType, otherClass, twoQuestions] {
            #expect(matches(reply) == dnsReply(try DNSMessage(parsing: reply.serialized()), matches: query))
        }
    }

    @Test func missReplyFromWireBytesEqualsTheParsedPath() throws {
        // Two proxies, the same forwarded query: one completes from the bytes, one from the parsed message.
        for cache in [false, true] {
            for (clientEDNS, upstreamOPT) in [(true, true), (false, false), (true, false), (false, true)] {
                func make() throws -> DNSProxy {
                    var configuration = DNSProxyConfiguration(
                        listen: [], upstreams: [try SocketAddress(ipAddress: "127.0.0.1", port: 9)])
                    if !cache { configuration.cache.maxEntries = 0 }
                    let proxy = DNSProxy(configuration: configuration)
                    proxy.setPolicy(try dnsPolicy(unitPolicyJSON))
                    return proxy
                }
                let wire = try make(), parsed = try make()
                let client = DNSMessage.query(id: 0xBEEF, name: try DNSName("WWW.example.com"), type: .a,
                                              edns: clientEDNS ? DNSEDNS(udpPayloadSize: 4096) : nil)
                func request(_ proxy: DNSProxy) throws -> DNSProxy.ForwardRequest {
                    guard case .forward(let request) = proxy.prepare(client.serialized(), from: IPAddress("10.1.0.9")!,
                                                                     overTCP: false, upstreamID: 0x0777)
                    else { throw DNSParseError(.truncated, at: 0) }  // not forwarded: fails the test
                    return request
                }
                let wireRequest = try request(wire), parsedRequest = try request(parsed)
                var upstream = try upstreamAnswer(to: try #require(wireRequest.outgoing))
                if !upstreamOPT { upstream.edns = nil } else if upstream.edns == nil { upstream.edns = DNSEDNS() }
                let bytes = upstream.serialized()
                let scan = try #require(DNSWireScan(bytes))
                let fromWire = wire.complete(wireRequest, upstream: .wire(bytes, scan))
                let fromMessage = parsed.complete(parsedRequest, upstreamReply: try DNSMessage(parsing: bytes))
                #expect(fromWire == fromMessage, "cache \(cache), client EDNS \(clientEDNS), upstream OPT \(upstreamOPT)")
                #expect(try DNSMessage(parsing: fromWire).header.id == 0xBEEF)
                // The same bindings learnt (payments/stripe: the CNAME's target address, the chain TTL).
                // Expiry instants may differ by a coarse-clock tick between the two proxies.
                let (left, right) = (wire.learned.entries(), parsed.learned.entries())
                #expect(left.count == right.count && !left.isEmpty)
                for (x, y) in zip(left, right) {
                    #expect(x.hostname == y.hostname && x.group == y.group && x.rule == y.rule)
                    #expect(x.addresses.map(\.address) == y.addresses.map(\.address))
                    for (a, b) in zip(x.addresses, y.addresses) { #expect(max(a.expiresAt, b.expiresAt) - min(a.expiresAt, b.expiresAt) < 100) }
                }
                #expect(wire.learned.contains(group: 0, rule: 2, address: IPAddress("192.0.2.7")!))
                #expect(wire.cache.count == parsed.cache.count)
                #expect(wire.counters.snapshot() == parsed.counters.snapshot())
            }
        }
        // An NXDOMAIN from the upstream: counted, nothing learnt, passed on.
        let proxy = try unreachableProxy()
        proxy.setPolicy(try dnsPolicy(unitPolicyJSON))
        guard case .forward(let request) = proxy.prepare(queryBytes("nope.example.com"), from: IPAddress("10.1.0.9")!,
                                                         overTCP: false, upstreamID: 9)
        else { Issue.record("an allowed miss must be forwarded"); return }
        let bytes = try #require(request.outgoing).response(code: .nameError).serialized()
        let reply = proxy.complete(request, upstream: .wire(bytes, try #require(DNSWireScan(bytes))))
        #expect(try DNSMessage(parsing: reply).responseCode == .nameError)
        #expect(proxy.counters.value(.nxdomainUpstream) == 1 && proxy.learned.entries().isEmpty)
    }
}

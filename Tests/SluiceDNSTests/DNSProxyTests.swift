// The proxy's query logic without sockets: policy judging per source (spec 004 "DNS Evaluation Is
// Stricter"), audit findings, REFUSED without a policy, malformed input (FORMERR or dropped, never a
// crash), non-QUERY opcodes, upstream failure → SERVFAIL, and the answer cache's TTL handling.
import Foundation
import NIOCore
import SluicePolicy
import SluiceWire
import Synchronization
import Testing
@testable import SluiceDNS

func dnsPolicy(_ json: String, id: String = "p1") throws -> DNSPolicy {
    let request = try PolicyParser.parseRequest(jsonBytes: Array(json.utf8)).value
    return DNSPolicy(policyID: id, mode: request.mode, config: request.policy)
}

let unitPolicyJSON = """
{"mode": "enforce", "policy": {"default_policy": "allow", "source_groups": [
  {"id": "payments", "priority": 1, "sources": {"cidrs": ["10.1.0.0/16"]}, "rules": [
    {"id": "no-evil", "action": "deny", "match": {"dns_hostname": "evil.example.com"}},
    {"id": "audit-ads", "mode": "audit", "action": "deny", "match": {"dns_hostname": "*.ads.example"}},
    {"id": "stripe", "action": "allow", "match": {"dns_hostname": "*.example.com", "proto": "tcp", "dst_ports": [443]}}
  ], "default_action": "allow"},
  {"id": "all", "priority": 2, "sources": {"cidrs": ["10.0.0.0/8"]}, "rules": [
    {"id": "everything", "action": "allow", "match": {"dns_hostname": ".*"}}]},
  {"id": "trial", "priority": 3, "mode": "audit", "sources": {"cidrs": ["192.168.0.0/16"]}, "rules": []}
]}}
"""

/// A proxy whose only upstream is a closed port: allowed queries end in SERVFAIL quickly.
func unreachableProxy(timeout: TimeAmount = .milliseconds(300)) throws -> DNSProxy {
    var configuration = DNSProxyConfiguration(listen: [],
                                              upstreams: [try SocketAddress(ipAddress: "127.0.0.1", port: 9)])
    configuration.upstreamTimeout = timeout
    return DNSProxy(configuration: configuration)
}

func queryBytes(_ name: String, _ type: DNSRecordType = .a, id: UInt16 = 0x1234, edns: DNSEDNS? = DNSEDNS())
    -> [UInt8]
{
    DNSMessage.query(id: id, name: try! DNSName(name), type: type, edns: edns).serialized()
}

final class FindingCollector: Sendable {
    private let findings = Mutex<[DNSFinding]>([])
    var all: [DNSFinding] { findings.withLock { $0 } }
    var sink: DNSFindingSink { { finding in self.findings.withLock { $0.append(finding) } } }
}

@Suite struct DNSPolicyJudgingTests {
    @Test func firstClaimingGroupDecidesAndNoRuleMeansDeny() throws {
        let policy = try dnsPolicy(unitPolicyJSON)
        let payments = IPAddress("10.1.2.3")!
        let evil = policy.judge(source: payments, name: "evil.example.com.")
        #expect(evil.verdict.verdict == .deny && evil.verdict.rule == "no-evil" && evil.allowingRule == nil)
        let stripe = policy.judge(source: payments, name: "API.Example.COM")
        #expect(stripe.verdict.verdict == .allow && stripe.allowingRule?.group == 0 && stripe.allowingRule?.rule == 2)
        // The payments group claims the source; its default_action does not apply to DNS: deny.
        let other = policy.judge(source: payments, name: "other.test")
        #expect(other.verdict.verdict == .deny && other.verdict.decidedBy == .dnsNoRule)
        // A later group that would allow it is never consulted.
        #expect(policy.judge(source: IPAddress("10.2.0.1")!, name: "other.test").allowingRule?.group == 1)
        let nobody = policy.judge(source: IPAddress("172.16.0.1")!, name: "api.example.com")
        #expect(nobody.verdict.verdict == .deny && nobody.verdict.decidedBy == .noGroup)
    }

    @Test func rebindingFollowsTheGroupsRuleOrder() throws {
        let policy = try dnsPolicy(unitPolicyJSON)
        #expect(policy.rebinding(hostname: "api.example.com", groupID: "payments", ruleID: "stripe")! == (0, 2))
        #expect(policy.rebinding(hostname: "evil.example.com", groupID: "payments", ruleID: "stripe") == nil)
        #expect(policy.rebinding(hostname: "api.example.com", groupID: "gone", ruleID: "stripe") == nil)
    }
}

@Suite struct DNSProxyQueryTests {
    @Test func deniedNameGetsNXDOMAINAndAFinding() async throws {
        let proxy = try unreachableProxy()
        let findings = FindingCollector()
        proxy.setFindingSink(findings.sink)
        proxy.setPolicy(try dnsPolicy(unitPolicyJSON))
        proxy.learned.learn(hostname: "evil.example.com", group: 0, rule: 2, groupID: "payments", ruleID: "stripe",
                            addresses: [(IPAddress("203.0.113.5")!, 300)])
        let bytes = await proxy.answer(queryBytes("Evil.Example.com"), from: IPAddress("10.1.0.9")!, overTCP: false)
        let reply = try DNSMessage(parsing: try #require(bytes))
        #expect(reply.responseCode == .nameError && reply.header.id == 0x1234 && reply.header.isResponse)
        #expect(reply.questions.first?.name.wireBytes == (try DNSName("Evil.Example.com")).wireBytes)
        #expect(reply.edns != nil)
        let expected = DNSFinding(policyID: "p1", source: IPAddress("10.1.0.9")!, hostname: "evil.example.com",
                                  finding: Finding(sourceGroup: "payments", rule: "no-evil", enforced: true))
        #expect(findings.all == [expected])
        // The deny withdrew what the name had taught in that group.
        #expect(!proxy.learned.contains(group: 0, rule: 2, address: IPAddress("203.0.113.5")!))
        #expect(proxy.counters.value(.nxdomainPolicy) == 1 && proxy.counters.value(.denied) == 1)
        #expect(proxy.counters.value(.learnedWithdrawn) == 1)
    }

    @Test func noGroupAndNoRuleAreDenied() async throws {
        let proxy = try unreachableProxy()
        proxy.setPolicy(try dnsPolicy(unitPolicyJSON))
        for (source, name) in [("172.16.0.1", "api.example.com"), ("10.1.0.1", "other.test")] {
            let bytes = await proxy.answer(queryBytes(name), from: IPAddress(source)!, overTCP: false)
            #expect(try DNSMessage(parsing: try #require(bytes)).responseCode == .nameError)
        }
        #expect(proxy.counters.value(.upstreamQueries) == 0)
    }

    @Test func auditGroupAnswersNormallyAndRecordsUnenforced() async throws {
        let proxy = try unreachableProxy()
        let findings = FindingCollector()
        proxy.setFindingSink(findings.sink)
        proxy.setPolicy(try dnsPolicy(unitPolicyJSON))
        let bytes = await proxy.answer(queryBytes("anything.test"), from: IPAddress("192.168.1.1")!, overTCP: false)
        // Answered as allowed: it went upstream (here unreachable, so SERVFAIL rather than NXDOMAIN).
        #expect(try DNSMessage(parsing: try #require(bytes)).responseCode == .serverFailure)
        #expect(findings.all.map(\.finding) == [Finding(sourceGroup: "trial", rule: nil, enforced: false)])
        #expect(proxy.counters.value(.audited) == 1 && proxy.counters.value(.nxdomainPolicy) == 0)
    }

    @Test func auditRuleRecordsAndEvaluationGoesOn() async throws {
        let proxy = try unreachableProxy()
        let findings = FindingCollector()
        proxy.setFindingSink(findings.sink)
        proxy.setPolicy(try dnsPolicy(unitPolicyJSON))
        _ = await proxy.answer(queryBytes("x.ads.example"), from: IPAddress("10.1.0.1")!, overTCP: false)
        #expect(findings.all.map(\.finding) == [
            Finding(sourceGroup: "payments", rule: "audit-ads", enforced: false),
            Finding(sourceGroup: "payments", rule: nil, enforced: true),
        ])
    }

    @Test func policyModeAuditTurnsEveryDenyIntoAnAnswer() async throws {
        let proxy = try unreachableProxy()
        let findings = FindingCollector()
        proxy.setFindingSink(findings.sink)
        proxy.setPolicy(try dnsPolicy(unitPolicyJSON.replacingOccurrences(of: "\"enforce\"", with: "\"audit\"")))
        let bytes = await proxy.answer(queryBytes("evil.example.com"), from: IPAddress("10.1.0.1")!, overTCP: false)
        #expect(try DNSMessage(parsing: try #require(bytes)).responseCode == .serverFailure)
        #expect(findings.all.map(\.finding) == [Finding(sourceGroup: "payments", rule: "no-evil", enforced: false)])
    }

    @Test func noActivePolicyRefuses() async throws {
        let proxy = try unreachableProxy()
        let bytes = await proxy.answer(queryBytes("api.example.com"), from: IPAddress("10.1.0.1")!, overTCP: false)
        #expect(try DNSMessage(parsing: try #require(bytes)).responseCode == .refused)
    }

    @Test func upstreamDownGivesSERVFAILWithinTheTimeout() async throws {
        // A bound loopback socket that never answers: the datagram is swallowed and only the timeout
        // ends the exchange (no traffic leaves this machine).
        let silent = try SilentUDPSocket()
        defer { silent.close() }
        var configuration = DNSProxyConfiguration(
            listen: [], upstreams: [try SocketAddress(ipAddress: "127.0.0.1", port: 9),
                                    try SocketAddress(ipAddress: "127.0.0.1", port: silent.port)])
        configuration.upstreamTimeout = .milliseconds(400)
        let proxy = DNSProxy(configuration: configuration)
        proxy.setPolicy(try dnsPolicy(unitPolicyJSON))
        let started = ContinuousClock.now
        let bytes = await proxy.answer(queryBytes("api.example.com"), from: IPAddress("10.1.0.1")!, overTCP: false)
        let elapsed = ContinuousClock.now - started
        #expect(try DNSMessage(parsing: try #require(bytes)).responseCode == .serverFailure)
        // Bounded, not hung: the two upstreams' timeouts plus slack for a loaded 2-core machine.
        #expect(elapsed < .milliseconds(4000))
        #expect(proxy.counters.value(.servfail) == 1)
    }

    @Test func malformedInputGetsFORMERROrIsDroppedNeverACrash() async throws {
        let proxy = try unreachableProxy()
        proxy.setPolicy(try dnsPolicy(unitPolicyJSON))
        let source = IPAddress("10.1.0.1")!
        // A header with a question count it does not have: FORMERR echoing the id.
        let short: [UInt8] = [0xAB, 0xCD, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]
        let formerr = try DNSMessage(parsing: try #require(await proxy.answer(short, from: source, overTCP: false)))
        #expect(formerr.responseCode == .formatError && formerr.header.id == 0xABCD)
        // Too short for a header, and a response sent to us: dropped.
        #expect(await proxy.answer([1, 2, 3], from: source, overTCP: false) == nil)
        var response = DNSMessage.query(id: 7, name: try DNSName("a.test"), type: .a)
        response.header.isResponse = true
        #expect(await proxy.answer(response.serialized(), from: source, overTCP: false) == nil)
        // Two questions: FORMERR. An UPDATE: NOTIMP.
        var two = DNSMessage.query(id: 8, name: try DNSName("a.test"), type: .a)
        two.questions.append(two.questions[0])
        let twoReply = try #require(await proxy.answer(two.serialized(), from: source, overTCP: false))
        #expect(try DNSMessage(parsing: twoReply).responseCode == .formatError)
        var update = DNSMessage.query(id: 9, name: try DNSName("a.test"), type: .soa)
        update.header.opcode = 5
        let updateReply = try #require(await proxy.answer(update.serialized(), from: source, overTCP: false))
        #expect(try DNSMessage(parsing: updateReply).responseCode == .notImplemented)
        // Random garbage of every length never traps.
        var generator = SystemRandomNumberGenerator()
        for length in 0..<300 {
            let garbage = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = await proxy.answer(garbage, from: source, overTCP: length % 2 == 0)
        }
        #expect(proxy.counters.value(.formerr) >= 2 && proxy.counters.value(.droppedMalformed) >= 2)
    }
}

@Suite struct DNSAnswerCacheTests {
    func answer(ttl: UInt32) throws -> (DNSQuestion, DNSMessage) {
        let query = DNSMessage.query(id: 1, name: try DNSName("www.sluice.test"), type: .a)
        let reply = query.response(answers: [
            DNSResourceRecord(name: try DNSName("www.sluice.test"), type: .a, ttl: ttl, data: .a(0xC000_020A)),
        ])
        return (query.questions[0], reply)
    }

    @Test func ttlsAgeAndEntriesExpire() throws {
        let cache = DNSAnswerCache()
        let (question, reply) = try answer(ttl: 60)
        cache.store(reply, for: question, now: 1_000_000)
        #expect(cache.lookup(question, now: 1_000_000)?.answers.first?.ttl == 60)
        var upper = question
        upper.name = try DNSName("WWW.SLUICE.TEST")
        #expect(cache.lookup(upper, now: 1_020_500)?.answers.first?.ttl == 40)
        #expect(cache.lookup(question, now: 1_060_000) == nil)
        #expect(cache.count == 0)
    }

    @Test func negativeAnswersUseTheSOAMinimum() throws {
        let cache = DNSAnswerCache()
        let query = DNSMessage.query(id: 1, name: try DNSName("nope.sluice.test"), type: .a)
        // SOA RDATA: two root names, then serial, refresh, retry, expire, minimum (= 60).
        let soa: [UInt8] = [0, 0] + [0, 0, 0, 1, 0, 0, 14, 16, 0, 0, 2, 88, 0, 1, 81, 128, 0, 0, 0, 60]
        let nx = query.response(code: .nameError, authorities: [
            DNSResourceRecord(name: try DNSName("sluice.test"), type: .soa, ttl: 300, data: .opaque(soa)),
        ])
        #expect(cache.cacheTTL(of: nx) == 60)
        let bare = query.response(code: .nameError)
        #expect(cache.cacheTTL(of: bare) == nil)  // RFC 2308: no SOA, no negative caching
        #expect(cache.cacheTTL(of: query.response(code: .serverFailure)) == nil)
    }

    @Test func boundedByEvictingTheOldest() throws {
        var configuration = DNSCacheConfiguration()
        configuration.maxEntries = 3
        let cache = DNSAnswerCache(configuration: configuration)
        for index in 0..<5 {
            let query = DNSMessage.query(id: 1, name: try DNSName("n\(index).test"), type: .a)
            let reply = query.response(answers: [
                DNSResourceRecord(name: query.questions[0].name, type: .a, ttl: 60, data: .a(UInt32(index))),
            ])
            cache.store(reply, for: query.questions[0], now: 0)
        }
        #expect(cache.count == 3 && cache.evicted == 2)
    }

    @Test func boundedInBytesToo() throws {
        // Answers of about 1,000 bytes each (TXT-sized records) against a 4,000-byte bound: at most three
        // fit, and an answer larger than the whole bound is not kept at all.
        var configuration = DNSCacheConfiguration()
        configuration.maxBytes = 4_000
        let cache = DNSAnswerCache(configuration: configuration)
        func reply(_ index: Int, size: Int) throws -> (DNSQuestion, DNSMessage) {
            let query = DNSMessage.query(id: 1, name: try DNSName("n\(index).test"), type: DNSRecordType(rawValue: 16))
            let text = (0..<(size / 256 + 1)).flatMap { _ in [UInt8(255)] + Array(repeating: UInt8(ascii: "x"), count: 255) }
            let answer = query.response(answers: [DNSResourceRecord(
                name: query.questions[0].name, type: DNSRecordType(rawValue: 16), ttl: 60, data: .opaque(Array(text.prefix(size))))])
            return (query.questions[0], answer)
        }
        for index in 0..<5 {
            let (question, answer) = try reply(index, size: 1_000)
            cache.store(answer, for: question, now: 0)
        }
        #expect(cache.count == 3 && cache.evicted == 2)
        let (newest, oldest) = (try reply(4, size: 1_000).0, try reply(1, size: 1_000).0)
        #expect(cache.lookup(newest, now: 0) != nil && cache.lookup(oldest, now: 0) == nil)
        let (bigQuestion, big) = try reply(9, size: 5_000)
        cache.store(big, for: bigQuestion, now: 0)
        #expect(cache.lookup(bigQuestion, now: 0) == nil && cache.count == 3)
    }
}

/// A UDP socket on 127.0.0.1 that receives and never replies: an upstream that times out.
struct SilentUDPSocket {
    let descriptor: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard fd >= 0, bound == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(descriptor) }
}

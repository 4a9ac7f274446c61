// The proxy on real sockets in front of a real upstream (nsd on loopback): allowed names answered and
// learned with TTL + grace (through CNAME chains), denied names NXDOMAIN without asking upstream, audit
// mode answering but recording, learned addresses expiring, truncated UDP answers retried over TCP,
// cached answers still judged and still teaching, EDNS0 passed through, and kdig as a real client.
import Foundation
import NIOCore
import NIOPosix
import SluicePolicy
import SluiceWire
import Testing
@testable import SluiceDNS

let integrationPolicyJSON = """
{"mode": "enforce", "policy": {"source_groups": [
  {"id": "lab", "sources": {"cidrs": ["127.0.0.0/24"]}, "rules": [
    {"id": "no-api", "action": "deny", "match": {"dns_hostname": "api.sluice.test"}},
    {"id": "zone", "action": "allow", "match": {"dns_hostname": "*.sluice.test", "proto": "tcp", "dst_ports": [443]}}
  ]},
  {"id": "quarantine", "sources": {"cidrs": ["127.0.1.0/24"]}, "rules": []}
]}}
"""

/// A running proxy in front of nsd, torn down by `stop`.
struct ProxyFixture {
    let nsd: NSDServer
    let server: DNSProxyServer
    var proxy: DNSProxy { server.proxy }
    var port: Int { server.boundAddresses.first?.port ?? 0 }
    var address: SocketAddress { try! SocketAddress(ipAddress: "127.0.0.1", port: port) }

    static func start(policy: String = integrationPolicyJSON,
                      adjust: (inout DNSProxyConfiguration) -> Void = { _ in }) async throws -> ProxyFixture {
        let nsd = try await offPool { Result { try NSDServer.start() } }.get()
        do {
            var configuration = DNSProxyConfiguration(
                listen: [try SocketAddress(ipAddress: "127.0.0.1", port: 0)],
                upstreams: [try SocketAddress(ipAddress: nsd.address, port: nsd.port)])
            configuration.upstreamTimeout = .seconds(1)
            adjust(&configuration)
            let proxy = DNSProxy(configuration: configuration)
            proxy.setPolicy(try dnsPolicy(policy))
            return ProxyFixture(nsd: nsd, server: try await DNSProxyServer.start(proxy: proxy))
        } catch {
            nsd.stop()
            throw error
        }
    }

    func stop() async {
        await server.close()
        let nsd = self.nsd
        await offPool { nsd.stop() }
    }

    /// Sends a query to the proxy as a client would and returns the parsed reply.
    func ask(_ name: String, _ type: DNSRecordType = .a, tcp: Bool = false, edns: DNSEDNS? = DNSEDNS())
        async throws -> DNSMessage
    {
        let client = DNSUpstreamClient(group: MultiThreadedEventLoopGroup.singleton, counters: DNSProxyCounters())
        let query = DNSMessage.query(id: UInt16.random(in: 1...0xFFFF), name: try DNSName(name), type: type, edns: edns)
        if tcp {
            return try await client.exchangeTCP(query.serialized(), expecting: query, server: address,
                                                timeout: .seconds(5))
        }
        return try await client.exchangeUDP(query.serialized(), expecting: query, server: address, timeout: .seconds(5))
    }
}

/// Runs `body` with a proxy in front of nsd, stopping both whatever happens.
func withProxy(policy: String = integrationPolicyJSON, adjust: (inout DNSProxyConfiguration) -> Void = { _ in },
               _ body: (ProxyFixture) async throws -> Void) async throws {
    let fixture = try await ProxyFixture.start(policy: policy, adjust: adjust)
    do {
        try await body(fixture)
    } catch {
        await fixture.stop()
        throw error
    }
    await fixture.stop()
}

@Suite(.serialized, .enabled(if: NSDServer.available, NSDServer.skipReason))
struct DNSProxyIntegrationTests {
    @Test func allowedNameIsAnsweredAndLearnedForTTLPlusGrace() async throws {
        try await withProxy { fixture in
            let before = fixture.proxy.learned.now()
            let reply = try await fixture.ask("www.sluice.test")
            #expect(reply.responseCode == .noError)
            #expect(Set(reply.answers.map(\.data)) == [.a(0xC000_020A), .a(0xC000_020B)])
            let learned = fixture.proxy.learned
            #expect(learned.contains(group: 0, rule: 1, address: IPAddress("192.0.2.10")!))
            #expect(learned.contains(group: 0, rule: 1, address: IPAddress("192.0.2.11")!))
            let entry = try #require(learned.entries().first { $0.hostname == "www.sluice.test" })
            #expect(entry.groupID == "lab" && entry.ruleID == "zone")
            let expected = learned.lifetimeMilliseconds(ttl: 300)  // 300 s TTL + 30 s grace
            #expect(expected == 330_000)
            for (_, expiresAt) in entry.addresses {
                #expect(expiresAt >= before + expected && expiresAt <= learned.now() + expected)
            }
            // The compiled packet policy reads the learned set: the rule's ports restrict the addresses.
            let request = try PolicyParser.parseRequest(jsonBytes: Array(integrationPolicyJSON.utf8)).value
            let compiled = PolicyCompiler.compile(mode: request.mode, policy: request.policy)
            func verdict(_ dst: String, _ port: UInt16) -> PolicyAction {
                let packet = PacketQuery(src: IPAddress("127.0.0.1")!, dst: IPAddress(dst)!, proto: 6, srcPort: 40000,
                                         dstPort: port)
                return compiled.lookup(packet, learned: learned.reader).verdict
            }
            #expect(verdict("192.0.2.10", 443) == .allow)
            #expect(verdict("192.0.2.10", 80) == .deny)
            #expect(verdict("192.0.2.12", 443) == .deny)
        }
    }

    @Test func cnameChainTeachesTheFinalAddressesForTheShortestLink() async throws {
        try await withProxy { fixture in
            let reply = try await fixture.ask("chain1.sluice.test", .aaaa)
            #expect(reply.responseCode == .noError && reply.answers.count == 5)
            let entry = try #require(fixture.proxy.learned.entries().first)
            #expect(entry.hostname == "chain1.sluice.test")
            #expect(entry.addresses.map(\.address) == [IPAddress("2001:db8::10")!, IPAddress("2001:db8::11")!])
            let lifetime = fixture.proxy.learned.lifetimeMilliseconds(ttl: 90)  // chain2's 90 s is the shortest
            #expect(entry.addresses[0].expiresAt <= fixture.proxy.learned.now() + lifetime)
            #expect(entry.addresses[0].expiresAt + 5_000 > fixture.proxy.learned.now() + lifetime)
        }
    }

    @Test func deniedNameIsNXDOMAINWithoutAskingUpstream() async throws {
        try await withProxy { fixture in
            let reply = try await fixture.ask("api.sluice.test")
            #expect(reply.responseCode == .nameError && reply.answers.isEmpty)
            #expect(fixture.proxy.counters.value(.upstreamQueries) == 0)
            #expect(fixture.proxy.learned.entries().isEmpty)
            // A name the zone does not have is NXDOMAIN from upstream, counted separately.
            #expect(try await fixture.ask("nope.sluice.test").responseCode == .nameError)
            #expect(fixture.proxy.counters.value(.nxdomainUpstream) == 1)
            #expect(fixture.proxy.counters.value(.nxdomainPolicy) == 1)
        }
    }

    @Test func auditModeAnswersButRecords() async throws {
        let audit = integrationPolicyJSON.replacingOccurrences(of: "\"mode\": \"enforce\"", with: "\"mode\": \"audit\"")
        try await withProxy(policy: audit) { fixture in
            let findings = FindingCollector()
            fixture.proxy.setFindingSink(findings.sink)
            let reply = try await fixture.ask("api.sluice.test")
            #expect(reply.responseCode == .noError && reply.answers.first?.data == .a(0xC633_6407))
            #expect(findings.all.map(\.finding) == [Finding(sourceGroup: "lab", rule: "no-api", enforced: false)])
            // Nothing allowed the name, so nothing is learned for it.
            #expect(fixture.proxy.learned.entries().isEmpty)
        }
    }

    @Test func learnedAddressesExpire() async throws {
        try await withProxy(adjust: { configuration in
            configuration.learned.graceSeconds = 1
            configuration.learned.minimumTTLSeconds = 1
        }) { fixture in
            #expect(try await fixture.ask("short.sluice.test").responseCode == .noError)
            let address = IPAddress("198.51.100.99")!
            #expect(fixture.proxy.learned.contains(group: 0, rule: 1, address: address))
            try await Task.sleep(for: .milliseconds(2_300))  // TTL 1 s + grace 1 s, plus the coarse clock's tick
            #expect(!fixture.proxy.learned.contains(group: 0, rule: 1, address: address))
            #expect(fixture.proxy.learned.entries().isEmpty)
        }
    }

    @Test func truncatedUpstreamAnswerIsRetriedOverTCP() async throws {
        try await withProxy { fixture in
            // Over UDP the client's 1232-byte buffer is too small: the proxy itself truncates.
            let udp = try await fixture.ask("big.sluice.test", .txt)
            #expect(udp.header.isTruncated && udp.answers.isEmpty)
            #expect(fixture.proxy.counters.value(.upstreamTruncated) == 1)
            // Over TCP the client gets all of it, from the cache the first query filled.
            let tcp = try await fixture.ask("big.sluice.test", .txt, tcp: true)
            #expect(!tcp.header.isTruncated && tcp.answers.count == 3)
            #expect(fixture.proxy.counters.value(.cacheHits) == 1)
        }
    }

    @Test func cachedAnswerIsStillJudgedAndStillTeaches() async throws {
        try await withProxy { fixture in
            _ = try await fixture.ask("alias.sluice.test")
            let upstreamQueries = fixture.proxy.counters.value(.upstreamQueries)
            // Swap in a policy that denies the name: the cached answer must not be served.
            let strict = integrationPolicyJSON.replacingOccurrences(of: "\"api.sluice.test\"",
                                                                    with: "\"alias.sluice.test\"")
            fixture.proxy.setPolicy(try dnsPolicy(strict))
            #expect(try await fixture.ask("alias.sluice.test").responseCode == .nameError)
            #expect(fixture.proxy.learned.entries().isEmpty)
            // Back to the first policy: answered from the cache, with aged TTLs, and learned again.
            fixture.proxy.setPolicy(try dnsPolicy(integrationPolicyJSON))
            let cached = try await fixture.ask("ALIAS.sluice.test")
            #expect(cached.responseCode == .noError && cached.answers.count == 3)
            #expect(cached.questions.first?.name.wireBytes == (try DNSName("ALIAS.sluice.test")).wireBytes)
            #expect(fixture.proxy.counters.value(.upstreamQueries) == upstreamQueries)
            #expect(fixture.proxy.learned.contains(group: 0, rule: 1, address: IPAddress("192.0.2.10")!))
        }
    }

    @Test func ednsIsPassedThroughAndAbsentWhenTheClientSentNone() async throws {
        try await withProxy { fixture in
            let withEDNS = try await fixture.ask("www.sluice.test", edns: DNSEDNS(udpPayloadSize: 1232, dnssecOK: true))
            #expect(withEDNS.edns != nil)
            let without = try await fixture.ask("www.sluice.test", .aaaa, edns: nil)
            #expect(without.edns == nil && without.responseCode == .noError && without.answers.count == 2)
        }
    }

    @Test func kdigThroughTheProxyFromDifferentSources() async throws {
        try await withProxy { fixture in
            let port = "\(fixture.port)"
            let allowed = await kdig(["@127.0.0.1", "-p", port, "+retry=0", "+time=3", "www.sluice.test", "A"])
            #expect(allowed.contains("status: NOERROR") && allowed.contains("192.0.2.10"))
            // 127.0.1.5 belongs to the quarantine group, which has no DNS rules: NXDOMAIN.
            let quarantined = await kdig(["@127.0.0.1", "-p", port, "-b", "127.0.1.5", "+retry=0", "+time=3",
                                    "www.sluice.test", "A"])
            #expect(quarantined.contains("status: NXDOMAIN"))
            // kdig over TCP, and kdig falling back to TCP on its own after a truncated UDP answer.
            let tcp = await kdig(["@127.0.0.1", "-p", port, "+tcp", "+retry=0", "+time=3", "big.sluice.test", "TXT"])
            #expect(tcp.contains("status: NOERROR") && tcp.contains("ANSWER: 3"))
            let fallback = await kdig(["@127.0.0.1", "-p", port, "+retry=0", "+time=3", "+bufsize=1232",
                                       "big.sluice.test", "TXT"])
            #expect(fallback.contains("ANSWER: 3"))
        }
    }
}

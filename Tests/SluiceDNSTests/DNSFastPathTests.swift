// The proxy's fast paths: cache hits patched into stored wire bytes (the same reply the slow path
// builds: client's id, flags, question case, aged TTLs, EDNS only when asked), and the UDP thread's
// pool of long-lived upstream sockets (ids multiplexed on one socket, forged replies ignored and
// counted, sockets retired onto new ports after `upstreamSocketReuse` queries). The pool test runs
// against a scripted upstream on 127.0.0.1 that answers as told, so nothing leaves the machine.
import Foundation
import NIOCore
import NIOPosix
import SluicePolicy
import SluiceWire
import Synchronization
import Testing
@testable import SluiceDNS

/// An answer as an upstream would send it: a CNAME to an A record, an NS in the authority section.
func upstreamAnswer(to query: DNSMessage, ttl: UInt32 = 300, authenticData: Bool = false) throws -> DNSMessage {
    var reply = query.response(answers: [
        DNSResourceRecord(name: try DNSName("www.example.com"), type: .cname, ttl: ttl,
                          data: .cname(try DNSName("api.example.com"))),
        DNSResourceRecord(name: try DNSName("api.example.com"), type: .a, ttl: ttl + 100, data: .a(0xC000_0207)),
    ])
    reply.header.authenticData = authenticData
    return reply
}

@Suite struct DNSReplyTemplateTests {
    @Test func cacheHitFromWireBytesMatchesTheSlowPath() throws {
        let proxy = try unreachableProxy()
        proxy.setPolicy(try dnsPolicy(unitPolicyJSON))
        let first = DNSMessage.query(id: 1, name: try DNSName("www.example.com"), type: .a)
        let answer = try upstreamAnswer(to: first, authenticData: true)
        let now = proxy.learned.now()
        proxy.cache.store(answer, for: first.questions[0], now: now - 7_000)  // stored 7 s ago

        // Another client, another id, another case, DNSSEC OK: the patched reply.
        let query = DNSMessage.query(id: 0xBEEF, name: try DNSName("WWW.Example.com"), type: .a,
                                     edns: DNSEDNS(udpPayloadSize: 4096, dnssecOK: true))
        guard case .reply(let bytes) = proxy.prepare(query.serialized(), from: IPAddress("10.1.0.9")!, overTCP: false)
        else { Issue.record("a cache hit must be answered at once"); return }
        let reply = try DNSMessage(parsing: bytes)
        #expect(proxy.counters.value(.cacheHits) == 1 && proxy.counters.value(.upstreamQueries) == 0)
        #expect(reply.header.id == 0xBEEF && reply.header.isResponse && reply.header.recursionAvailable)
        #expect(reply.header.recursionDesired && reply.header.authenticData && reply.responseCode == .noError)
        #expect(reply.questions[0].name.wireBytes == query.questions[0].name.wireBytes)  // the client's case
        #expect(reply.answers.map(\.ttl) == [293, 393])
        #expect(reply.answers.map(\.data) == answer.answers.map(\.data))
        #expect(reply.edns?.dnssecOK == true && reply.edns?.udpPayloadSize == 1232)

        // It is the reply the message-building path gives for the same cache entry.
        let slow = try #require(proxy.cache.lookup(first.questions[0], now: now))
        var expected = query.response(code: slow.responseCode, answers: slow.answers, authorities: slow.authorities,
                                      udpPayloadSize: 1232)
        expected.header.authenticData = true
        #expect(reply == expected)

        // Without EDNS: no OPT record, and no AD for a client that did not ask for it.
        let plain = DNSMessage.query(id: 7, name: try DNSName("www.example.com"), type: .a, edns: nil)
        guard case .reply(let plainBytes) = proxy.prepare(plain.serialized(), from: IPAddress("10.1.0.9")!,
                                                          overTCP: false)
        else { Issue.record("a cache hit must be answered at once"); return }
        let plainReply = try DNSMessage(parsing: plainBytes)
        #expect(plainReply.edns == nil && !plainReply.header.authenticData && plainReply.header.id == 7)

        // A hit still teaches the allowing rule (payments/stripe), for the remaining TTL.
        #expect(proxy.learned.contains(group: 0, rule: 2, address: IPAddress("192.0.2.7")!))
        // And a deny still wins over the cache.
        let denied = DNSMessage.query(id: 8, name: try DNSName("www.example.com"), type: .a)
        guard case .reply(let deniedBytes) = proxy.prepare(denied.serialized(), from: IPAddress("172.16.0.1")!,
                                                           overTCP: false)
        else { Issue.record("a deny must be answered at once"); return }
        #expect(try DNSMessage(parsing: deniedBytes).responseCode == .nameError)
    }

    @Test func upstreamQueryBytesArePatchedNotRebuilt() throws {
        let query = DNSMessage.query(id: 0x4242, name: try DNSName("Mixed.Example.com"), type: .aaaa,
                                     edns: DNSEDNS(udpPayloadSize: 4096, dnssecOK: true,
                                                   options: [DNSEDNSOption(code: 10, data: [1, 2, 3, 4, 5, 6, 7, 8])]))
        var outgoing = query
        outgoing.header.id = 0x0102
        outgoing.edns?.udpPayloadSize = 1232
        func patched(_ message: DNSMessage, id: UInt16) throws -> [UInt8] {
            let bytes = message.serialized()
            let opt = DNSProxy.clientOPT(bytes, try #require(DNSWireScan(bytes)))
            #expect((opt != nil) == (message.edns != nil) && opt?.dnssecOK == message.edns?.dnssecOK)
            #expect(opt?.udpPayloadSize == message.edns?.udpPayloadSize)
            return DNSProxy.upstreamQueryBytes(bytes, id: id, opt: opt, udpPayloadSize: 1232)
        }
        #expect(try patched(query, id: 0x0102) == outgoing.serialized())
        let plain = DNSMessage.query(id: 9, name: try DNSName("a.example.com"), type: .a, edns: nil)
        var plainOutgoing = plain
        plainOutgoing.header.id = 77
        #expect(try patched(plain, id: 77) == plainOutgoing.serialized())
    }

    @Test func templateTTLOffsetsCoverEverySection() throws {
        let query = DNSMessage.query(id: 1, name: try DNSName("www.example.com"), type: .a)
        var answer = try upstreamAnswer(to: query, ttl: 60)
        answer.authorities = [DNSResourceRecord(name: try DNSName("example.com"), type: .ns, ttl: 3600,
                                                data: .opaque(Array((try DNSName("ns1.example.com")).wireBytes)))]
        let template = try #require(DNSReplyTemplate(answer))
        #expect(template.ttls == [60, 160, 3600])
        #expect(template.addresses.map(\.address) == [IPAddress("192.0.2.7")!] && template.addresses[0].ttl == 60)
        let aged = try #require(template.reply(
            to: query.serialized(), header: query.header, questionLength: query.questions[0].name.wireBytes.count,
            dnssecOK: nil, age: 100, udpPayloadSize: 1232, limit: 512))
        #expect(try DNSMessage(parsing: aged).answers.map(\.ttl) == [0, 60])
        #expect(try DNSMessage(parsing: aged).authorities.map(\.ttl) == [3500])
        // Too big for the client's buffer: nil, the caller truncates the slow way.
        #expect(template.reply(to: query.serialized(), header: query.header, questionLength: 17, dnssecOK: nil, age: 0,
                               udpPayloadSize: 1232, limit: 40) == nil)
    }
}

/// A UDP upstream on 127.0.0.1 whose replies a test scripts; it records each query's source port and id.
final class ScriptedUpstream: Sendable {
    /// What to send back for one query (any number of datagrams, forged ones included).
    typealias Script = @Sendable (DNSMessage) -> [[UInt8]]
    /// Source port and id of every query received.
    final class Log: Sendable {
        let entries = Mutex<[(port: Int, id: UInt16)]>([])
    }

    let channel: any Channel
    private let seen = Log()

    init(script: @escaping Script) async throws {
        let record = seen
        channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ScriptedHandler(script: script, record: record))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    var address: SocketAddress { channel.localAddress! }
    var queries: [(port: Int, id: UInt16)] { seen.entries.withLock { $0 } }
    func close() async { try? await channel.close() }

    private final class ScriptedHandler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let script: Script
        let record: Log

        init(script: @escaping Script, record: Log) {
            self.script = script
            self.record = record
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            guard let query = try? DNSMessage(parsing: Array(envelope.data.readableBytesView)) else { return }
            record.entries.withLock { $0.append((envelope.remoteAddress.port ?? 0, query.header.id)) }
            for datagram in script(query) {
                var buffer = context.channel.allocator.buffer(capacity: datagram.count)
                buffer.writeBytes(datagram)
                context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: buffer)),
                              promise: nil)
            }
            context.flush()
        }
    }
}

/// Loopback clients may resolve *.example.com.
let loopbackPolicyJSON = """
{"mode": "enforce", "policy": {"source_groups": [
  {"id": "local", "sources": {"cidrs": ["127.0.0.0/8"]}, "rules": [
    {"id": "example", "action": "allow", "match": {"dns_hostname": "*.example.com"}}]}]}}
"""

@Suite(.serialized) struct DNSUpstreamPoolTests {
    /// Sends one query through the UDP listener and returns the parsed reply.
    func ask(_ server: DNSProxyServer, _ name: String, id: UInt16) async throws -> DNSMessage {
        let client = DNSUpstreamClient(group: MultiThreadedEventLoopGroup.singleton, counters: DNSProxyCounters())
        let query = DNSMessage.query(id: id, name: try DNSName(name), type: .a)
        return try await client.exchangeUDP(query.serialized(), expecting: query, server: server.boundAddresses[0],
                                            timeout: .seconds(3))
    }

    @Test func forgedRepliesAreIgnoredAndSocketsAreReusedThenRetired() async throws {
        // Before the real answer: a reply with another id, one with another question, and garbage.
        let upstream = try await ScriptedUpstream { query in
            var wrongID = try! upstreamAnswer(to: query)
            wrongID.header.id &+= 1
            var wrongQuestion = try! upstreamAnswer(to: query)
            wrongQuestion.questions = [DNSQuestion(name: try! DNSName("evil.example.com"), type: .a)]
            return [wrongID.serialized(), wrongQuestion.serialized(), [1, 2, 3],
                    try! upstreamAnswer(to: query).serialized()]
        }
        var configuration = DNSProxyConfiguration(listen: [try SocketAddress(ipAddress: "127.0.0.1", port: 0)],
                                                  upstreams: [upstream.address])
        configuration.upstreamSocketsPerLoop = 1
        configuration.upstreamSocketReuse = 3
        configuration.udpThreads = 1  // one pool, so the socket rotation below is observable
        configuration.cache.maxEntries = 0  // every query goes upstream
        let proxy = DNSProxy(configuration: configuration)
        proxy.setPolicy(try dnsPolicy(loopbackPolicyJSON))
        let server = try await DNSProxyServer.start(proxy: proxy)
        do {
            for index in 0..<4 {
                let reply = try await ask(server, "www.example.com", id: UInt16(100 + index))
                #expect(reply.header.id == UInt16(100 + index) && reply.answers.count == 2)
            }
            #expect(proxy.counters.value(.upstreamMismatched) == 12)  // three forgeries per query, all ignored
            #expect(proxy.counters.value(.upstreamQueries) == 4 && proxy.counters.value(.servfail) == 0)
            let seen = upstream.queries
            #expect(seen.count == 4)
            // Three queries on one socket (one source port), the fourth on its replacement.
            #expect(Set(seen.prefix(3).map(\.port)).count == 1 && seen[3].port != seen[0].port)
            // The upstream leg's ids are the pool's own, not the clients'.
            #expect(seen.map(\.id) != [100, 101, 102, 103])
            // Answers that came through the pool teach the allowing rule.
            #expect(proxy.learned.contains(group: 0, rule: 0, address: IPAddress("192.0.2.7")!))
        } catch {
            await server.close()
            await upstream.close()
            throw error
        }
        await server.close()
        await upstream.close()
    }

    @Test func aSilentUpstreamTimesOutAndTheNextOneAnswers() async throws {
        let silent = try await ScriptedUpstream { _ in [] }
        let answering = try await ScriptedUpstream { query in [try! upstreamAnswer(to: query).serialized()] }
        var configuration = DNSProxyConfiguration(listen: [try SocketAddress(ipAddress: "127.0.0.1", port: 0)],
                                                  upstreams: [silent.address, answering.address])
        configuration.upstreamTimeout = .milliseconds(300)
        configuration.cache.maxEntries = 0
        let proxy = DNSProxy(configuration: configuration)
        proxy.setPolicy(try dnsPolicy(loopbackPolicyJSON))
        let server = try await DNSProxyServer.start(proxy: proxy)
        let started = ContinuousClock.now
        let reply = try? await ask(server, "www.example.com", id: 5)
        let elapsed = ContinuousClock.now - started
        await server.close()
        await silent.close()
        await answering.close()
        #expect(reply?.answers.count == 2, "the second upstream's answer")
        #expect(proxy.counters.value(.upstreamTimeouts) == 1 && silent.queries.count == 1)
        // The pool's sweep runs every 100 ms: the timeout fires between 300 and ~400 ms, not at the 3 s client limit.
        #expect(elapsed >= .milliseconds(300) && elapsed < .milliseconds(1_500), "took \(elapsed)")
    }

    @Test func manyConcurrentQueriesShareTheSocketsAndAllGetTheirAnswer() async throws {
        let upstream = try await ScriptedUpstream { query in [try! upstreamAnswer(to: query).serialized()] }
        var configuration = DNSProxyConfiguration(listen: [try SocketAddress(ipAddress: "127.0.0.1", port: 0)],
                                                  upstreams: [upstream.address])
        configuration.cache.maxEntries = 0
        // Two UDP threads: two listeners on one port (SO_REUSEPORT), each with its own pool.
        configuration.udpThreads = 2
        let proxy = DNSProxy(configuration: configuration)
        proxy.setPolicy(try dnsPolicy(loopbackPolicyJSON))
        let server = try await DNSProxyServer.start(proxy: proxy)
        #expect(server.udpListenerCount == 2 && server.boundAddresses.count == 2)
        let ids = try? await withThrowingTaskGroup(of: UInt16.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let reply = try await self.ask(server, "www.example.com", id: UInt16(index + 1))
                    return reply.answers.count == 2 ? reply.header.id : 0  // 0: SERVFAIL or worse
                }
            }
            return try await group.reduce(into: Set<UInt16>()) { $0.insert($1) }
        }
        await server.close()
        let ports = Set(upstream.queries.map(\.port))
        await upstream.close()
        #expect(ids == Set((1...200).map { UInt16($0) }))
        #expect(ports.count <= 2 * configuration.upstreamSocketsPerLoop, "a socket per query: \(ports.count) ports")
        // The kernel spread the 200 clients (a fresh source port each) over both listeners: both pools
        // forwarded (all on one listener would take 2^-199 luck).
        #expect(ports.count > configuration.upstreamSocketsPerLoop, "one listener only: \(ports.count) ports")
    }
}

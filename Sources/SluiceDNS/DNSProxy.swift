// What the proxy does with one query, independent of sockets (DNSProxyServer carries the bytes):
//
//   bytes ─read─► (malformed: FORMERR or drop) ─► DNS policy of the source (first claiming group,
//   first matching dns_hostname rule, else deny) ─deny─► NXDOMAIN, finding, withdraw the name's bindings
//        │                                               (audit: finding, then answered as allowed)
//        └allow─► cache ─miss─► upstreams in order (UDP, TCP when truncated; timeout each) ─► SERVFAIL if all fail
//                   └──hit────────────┴─► learn A/AAAA (through CNAMEs) for the allowing rule ─► reply
//
// The active policy is swapped at runtime by the control plane (`setPolicy`); a query reads it once, so
// it is judged by one policy from start to end. `prepare` does everything that does not wait (on the UDP
// thread that read the query: denials and cache hits are answered there), `complete` builds the reply once
// the upstreams answered; `answer` strings the two together over fresh upstream sockets (TCP clients).
import NIOCore
import NIOPosix
import SluicePolicy
import SluiceWire
import Synchronization

/// The proxy's settings (docs/dns.md lists the defaults and why).
public struct DNSProxyConfiguration: Sendable {
    /// Addresses to listen on, UDP and TCP each.
    public var listen: [SocketAddress]
    /// Upstream resolvers, tried in order.
    public var upstreams: [SocketAddress]
    /// How long one upstream exchange (UDP, or the TCP retry) may take.
    public var upstreamTimeout: TimeAmount = .seconds(2)
    /// UDP threads (DNSUDPLoop), each with its own listener per listen address on the shared port
    /// (SO_REUSEPORT) and its own upstream pool; nil: one per CPU.
    public var udpThreads: Int? = nil
    /// Connected UDP sockets per upstream in each UDP thread's pool (DNSUpstreamPool).
    public var upstreamSocketsPerLoop: Int = 4
    /// Queries a pooled upstream socket carries before it is replaced by one on a new random port.
    public var upstreamSocketReuse: Int = 10_000
    /// Most queries being answered at once; beyond it UDP queries are dropped (the client retries).
    public var maxInFlight: Int = 4096
    /// Largest UDP reply sent, whatever the client's EDNS buffer says (RFC 6891; the flag-day value).
    public var maxUDPReplySize: Int = 1232
    /// How long an idle TCP client connection stays open.
    public var tcpIdleTimeout: TimeAmount = .seconds(10)
    /// Answer cache bounds.
    public var cache = DNSCacheConfiguration()
    /// Learned address set bounds and timing.
    public var learned = LearnedAddressConfiguration()

    /// Listen and upstream addresses with every other setting at its default.
    public init(listen: [SocketAddress], upstreams: [SocketAddress]) {
        self.listen = listen
        self.upstreams = upstreams
    }
}

/// A DNS finding: one deny (enforced or audited) the DNS policy produced.
public struct DNSFinding: Sendable, Equatable {
    /// The policy that produced it.
    public var policyID: String
    /// Who asked.
    public var source: IPAddress
    /// The name asked for, lower case without the trailing dot.
    public var hostname: String
    /// The group and rule (ids) and whether the deny was enforced.
    public var finding: Finding
}

/// Where findings go (the API's FindingRecorder in `sluice run`). Called from query tasks; must not block.
public typealias DNSFindingSink = @Sendable (DNSFinding) -> Void

/// The query logic. Any task may call `answer`; the policy and the sink may be replaced at any time.
public final class DNSProxy: Sendable {
    /// Settings.
    public let configuration: DNSProxyConfiguration
    /// The learned addresses (hand `learned.reader` to the dataplane).
    public let learned: LearnedAddressSet
    /// The answer cache.
    public let cache: DNSAnswerCache
    /// Counters.
    public let counters = DNSProxyCounters()
    let upstream: DNSUpstreamClient
    private let policy = Mutex<DNSPolicy?>(nil)
    private let sink = Mutex<DNSFindingSink?>(nil)
    private let inFlight = Atomic<Int>(0)

    /// A proxy with no active policy (it answers REFUSED until `setPolicy`).
    public init(configuration: DNSProxyConfiguration,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        learned = LearnedAddressSet(configuration: configuration.learned)
        cache = DNSAnswerCache(configuration: configuration.cache)
        upstream = DNSUpstreamClient(group: group, counters: counters)
    }

    /// The active policy.
    public var activePolicy: DNSPolicy? { policy.withLock { $0 } }

    /// Makes `newPolicy` the one queries are judged by (nil: none active, everything REFUSED) and moves
    /// learned bindings over to it: a binding stays only while its rule still allows its name.
    public func setPolicy(_ newPolicy: DNSPolicy?) {
        policy.withLock { $0 = newPolicy }
        if let newPolicy {
            learned.rebind { name, group, rule in newPolicy.rebinding(hostname: name, groupID: group, ruleID: rule) }
        } else {
            learned.removeAll()
        }
    }

    /// Sends DNS findings to `sink` from now on.
    public func setFindingSink(_ newSink: DNSFindingSink?) {
        sink.withLock { $0 = newSink }
    }

    /// Claims a slot for a query; false when `maxInFlight` are being answered (the caller drops it).
    func enter() -> Bool {
        if inFlight.add(1, ordering: .relaxed).newValue > configuration.maxInFlight {
            inFlight.subtract(1, ordering: .relaxed)
            counters.increment(.droppedOverload)
            return false
        }
        return true
    }

    func leave() {
        inFlight.subtract(1, ordering: .relaxed)
    }

    /// The reply to the query `bytes` from `source` (wire form, without a TCP length prefix), or nil when
    /// nothing should be sent. `overTCP` lifts the UDP size limit. Never throws, never traps on input.
    /// Forwarded queries use a fresh upstream socket each (the UDP listener uses its pool instead).
    public func answer(_ bytes: [UInt8], from source: IPAddress, overTCP: Bool) async -> [UInt8]? {
        switch prepare(bytes, from: source, overTCP: overTCP) {
        case .reply(let reply): return reply
        case .drop: return nil
        case .forward(let request):
            var reply: DNSMessage?
            guard let outgoing = request.outgoing else { return complete(request, upstreamReply: nil) }
            for server in configuration.upstreams {
                if let answer = await exchange(request.outgoingBytes, outgoing, server) {
                    reply = answer
                    break
                }
            }
            return complete(request, upstreamReply: reply)
        }
    }

    /// What `prepare` decided for one query.
    package enum Prepared {
        /// Send these bytes.
        case reply([UInt8])
        /// Send nothing.
        case drop
        /// Ask the upstreams, then `complete`.
        case forward(ForwardRequest)
    }

    /// An allowed query that has to go upstream, with what `complete` needs afterwards. A class: the pool's
    /// pending entries hold it, and copying one reference is cheaper than copying a decision and arrays.
    /// It keeps both legs as bytes, not as messages: the common completion reads only the client's id and
    /// whether it sent EDNS, and the rare paths (SERVFAIL, re-encoding, TCP) parse again. Immutable, so it
    /// may travel to a TCP retry task and back.
    package final class ForwardRequest: Sendable {
        /// The client's query as received (it parsed).
        let queryBytes: [UInt8]
        let queryID: UInt16
        /// The client sent an OPT record (its reply carries ours, else none).
        let queryHasEDNS: Bool
        /// The question as the cache's key (hashed once, at the lookup that missed).
        let cacheKey: DNSAnswerCache.Key
        let decision: DNSDecision
        /// The question's name as the policy and the learned set read it, its hash taken once.
        let name: Prehashed<String>
        let limit: Int
        /// The upstream leg: the query with this id (the pool sets its own instead) and, in the client's OPT
        /// record if any, our EDNS buffer size. Written straight into the pool's send area, so no copy is
        /// made per query; the TCP retry and fresh-socket paths ask for `outgoingBytes`.
        let upstreamID: UInt16
        let opt: ClientOPT?
        let upstreamPayloadSize: UInt16

        init(bytes: [UInt8], queryID: UInt16, queryHasEDNS: Bool, cacheKey: DNSAnswerCache.Key, decision: DNSDecision,
             name: Prehashed<String>, limit: Int, upstreamID: UInt16, opt: ClientOPT?, upstreamPayloadSize: UInt16) {
            queryBytes = bytes
            self.queryID = queryID
            self.queryHasEDNS = queryHasEDNS
            self.cacheKey = cacheKey
            self.decision = decision
            self.name = name
            self.limit = limit
            self.upstreamID = upstreamID
            self.opt = opt
            self.upstreamPayloadSize = upstreamPayloadSize
        }

        /// The client's query as a message (nil cannot happen: it parsed in `prepare`).
        var query: DNSMessage? { try? DNSMessage(parsing: queryBytes) }

        /// The upstream leg's bytes.
        var outgoingBytes: [UInt8] {
            DNSProxy.upstreamQueryBytes(queryBytes, id: upstreamID, opt: opt, udpPayloadSize: upstreamPayloadSize)
        }

        /// Writes the upstream leg with id `id` into `target` (`queryBytes.count` bytes).
        func writeUpstreamQuery(into target: UnsafeMutableRawBufferPointer, id: UInt16) {
            DNSProxy.writeUpstreamQuery(queryBytes, id: id, opt: opt, udpPayloadSize: upstreamPayloadSize, into: target)
        }

        /// The upstream leg as a message, what its answers are checked against (it parsed as the query).
        var outgoing: DNSMessage? { try? DNSMessage(parsing: outgoingBytes) }

        /// SERVFAIL to the client (header only, should its query not parse again, which cannot happen).
        func serverFailure() -> [UInt8] {
            guard let query else {
                var header = DNSHeader(id: queryID)
                header.isResponse = true
                header.rcodeLow = UInt8(DNSResponseCode.serverFailure.rawValue)
                return DNSMessage(header: header).serialized()
            }
            return query.errorResponse(.serverFailure).serialized(maxSize: limit)
        }

        /// `reply` as the client's answer: its id, and no OPT record when the client sent none.
        func forClient(_ reply: DNSMessage) -> [UInt8] {
            var reply = reply
            reply.header.id = queryID
            if !queryHasEDNS { reply.edns = nil }
            return reply.serialized(maxSize: limit)
        }

        /// The upstream's reply bytes as the client's answer when only the id must change: the client's
        /// OPT presence matches (`replyHasEDNS`) and they fit its buffer; nil otherwise.
        func passedOn(_ bytes: [UInt8], replyHasEDNS: Bool) -> [UInt8]? {
            guard bytes.count >= 12, bytes.count <= limit, queryHasEDNS == replyHasEDNS else { return nil }
            var reply = bytes
            reply[0] = UInt8(queryID >> 8)
            reply[1] = UInt8(truncatingIfNeeded: queryID)
            return reply
        }
    }

    /// Everything that does not wait: reading the query, judging, denials, cache hits. Runs on the caller's
    /// thread (the UDP thread that read the query), so deny and hit answers never hop to another thread.
    /// `upstreamID`: the id of the upstream leg; nil draws a random one (the UDP threads pass 0: their pool
    /// sets its own, and so does their TCP retry).
    ///
    /// The common query (well-formed, not a response, standard opcode, one question) is read on its bytes,
    /// `DNSWireScan` checking it by the parser's rules: no message is built on the way to the cache or the
    /// upstream. Anything else goes to `reject`; the replies the proxy makes up itself (REFUSED, NXDOMAIN,
    /// the slow hit) parse the query then.
    package func prepare(_ bytes: [UInt8], from source: IPAddress, overTCP: Bool,
                         upstreamID: UInt16? = nil) -> Prepared {
        guard let scan = DNSWireScan(bytes), !scan.isResponse, scan.opcode == 0, scan.questionCount == 1,
              let key = DNSAnswerCache.Key(message: bytes), let name = DNSName.text(ofNameIn: bytes, at: 12) else {
            return reject(bytes, overTCP: overTCP)
        }
        let opt = Self.clientOPT(bytes, scan)
        let limit = overTCP ? 65_535 : udpLimit(opt?.udpPayloadSize)
        counters.increment(.queries)
        guard let policy = activePolicy else {
            counters.increment(.refusedNoPolicy)
            return errorReply(.refused, to: bytes, limit: limit)
        }
        let decision = policy.judge(source: source, name: name)
        report(decision.verdict.findings, policy: policy, source: source, hostname: name)
        if decision.verdict.verdict == .deny {
            counters.increment(.denied)
            counters.increment(.nxdomainPolicy)
            if let group = decision.claimingGroup {
                counters.increment(.learnedWithdrawn, by: UInt64(learned.withdraw(hostname: name, group: group)))
            }
            return errorReply(.nameError, to: bytes, limit: limit)
        }
        counters.increment(.allowed)
        if decision.verdict.decision == .deny { counters.increment(.audited) }

        if let hit = cache.hit(key, now: learned.now()), let reply = answer(
            from: hit, to: bytes, header: DNSHeader(id: scan.id, flags: scan.flags), questionLength: key.nameEnd - 12,
            dnssecOK: opt?.dnssecOK, decision: decision, hostname: name, limit: limit) {
            counters.increment(.cacheHits)
            return .reply(reply)
        }
        counters.increment(.cacheMisses)
        return .forward(ForwardRequest(bytes: bytes, queryID: scan.id, queryHasEDNS: opt != nil, cacheKey: key,
                                       decision: decision, name: Prehashed(name), limit: limit,
                                       upstreamID: upstreamID ?? UInt16.random(in: 0...UInt16.max), opt: opt,
                                       upstreamPayloadSize: UInt16(max(configuration.maxUDPReplySize, 512))))
    }

    /// Queries `prepare` does not take on its bytes: unparsable ones get FORMERR (or nothing, when not even
    /// the header can be answered), responses are dropped (answering could start a loop), other opcodes get
    /// NOTIMP and anything but one question FORMERR.
    private func reject(_ bytes: [UInt8], overTCP: Bool) -> Prepared {
        let query: DNSMessage
        do {
            query = try DNSMessage(parsing: bytes)
        } catch {
            if let reply = DNSMessage.formatErrorResponse(toUnparsable: bytes) {
                counters.increment(.formerr)
                return .reply(reply)
            }
            counters.increment(.droppedMalformed)
            return .drop
        }
        guard !query.header.isResponse else {
            counters.increment(.droppedMalformed)
            return .drop
        }
        let limit = overTCP ? 65_535 : udpLimit(query.edns?.udpPayloadSize)
        if query.header.opcode != 0 {
            counters.increment(.notImplemented)
            return .reply(query.errorResponse(.notImplemented).serialized(maxSize: limit))
        }
        // Not one question. (A parsed one-question query always reads on its bytes: the scan follows the
        // parser's rules and a question name cannot be compressed; were it not so, it is dropped, counted.)
        guard query.questions.count == 1 else {
            counters.increment(.formerr)
            return .reply(query.errorResponse(.formatError).serialized(maxSize: limit))
        }
        counters.increment(.droppedMalformed)
        return .drop
    }

    /// A reply of the proxy's own with `code` and no records to the query `bytes` (which `prepare` read).
    private func errorReply(_ code: DNSResponseCode, to bytes: [UInt8], limit: Int) -> Prepared {
        guard let query = try? DNSMessage(parsing: bytes) else {
            counters.increment(.droppedMalformed)  // cannot happen: the scan accepted exactly what parses
            return .drop
        }
        return .reply(query.errorResponse(code).serialized(maxSize: limit))
    }

    /// The reply to the query `bytes` (its header, its question name's length, its DO bit or nil without
    /// an OPT record) from a cached answer, which teaches the learned set as a fresh one would. The fast
    /// way: the stored wire form with this client's id, flags, question and EDNS patched in; otherwise (no
    /// template, or too big for the client's buffer) built from the message, truncated if need be. Nil
    /// only if the stored bytes no longer parse (they were scanned when stored).
    private func answer(from hit: DNSAnswerCache.Hit, to bytes: [UInt8], header: DNSHeader, questionLength: Int,
                        dnssecOK: Bool?, decision: DNSDecision, hostname name: String, limit: Int) -> [UInt8]? {
        if let template = hit.template, let reply = template.reply(
            to: bytes, header: header, questionLength: questionLength, dnssecOK: dnssecOK, age: hit.age,
            udpPayloadSize: UInt16(configuration.maxUDPReplySize), limit: limit) {
            let age = hit.age
            if template.rcode == UInt8(DNSResponseCode.nameError.rawValue) { counters.increment(.nxdomainUpstream) }
            if let allowing = decision.allowingRule, template.rcode == 0, !template.addresses.isEmpty {
                learn(template.addresses.map { ($0.address, $0.ttl > age ? $0.ttl - age : 0) },
                      group: allowing.group, rule: allowing.rule, decision: decision, hostname: Prehashed(name))
            }
            return reply
        }
        guard let cached = hit.agedMessage, let query = try? DNSMessage(parsing: bytes) else { return nil }
        let reply = cachedReply(cached, to: query)
        if reply.responseCode == .nameError { counters.increment(.nxdomainUpstream) }
        teach(reply, decision: decision, hostname: Prehashed(name))
        return reply.serialized(maxSize: limit)
    }

    /// A client's OPT record as the proxy reads it: where its CLASS field (the UDP payload size) lies in
    /// the query, that size, and the DO bit.
    struct ClientOPT {
        let classAt: Int
        let udpPayloadSize: UInt16
        let dnssecOK: Bool
    }

    /// The OPT record of the query `bytes` (scanned as `scan`), if it has one.
    static func clientOPT(_ bytes: [UInt8], _ scan: DNSWireScan) -> ClientOPT? {
        guard scan.hasOPT else { return nil }
        var found: ClientOPT? = nil
        scan.forEachRecord(in: bytes) { record in
            // TYPE, CLASS, TTL (extended RCODE, version, then the flags with DO on top), RDLENGTH, RDATA.
            guard record.type == DNSRecordType.opt.rawValue else { return }
            found = ClientOPT(classAt: record.dataStart - 8, udpPayloadSize: record.dnsClass,
                              dnssecOK: bytes[record.dataStart - 4] & 0x80 != 0)
        }
        return found
    }

    /// The client's query bytes for the upstream leg: `id` and, in its OPT record (`opt`) if any, our UDP
    /// payload size patched in. EDNS passes through (flags, options); only the buffer size is ours, this
    /// leg being ours.
    static func upstreamQueryBytes(_ bytes: [UInt8], id: UInt16, opt: ClientOPT?, udpPayloadSize: UInt16) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: bytes.count) { buffer, count in
            writeUpstreamQuery(bytes, id: id, opt: opt, udpPayloadSize: udpPayloadSize,
                               into: UnsafeMutableRawBufferPointer(buffer))
            count = bytes.count
        }
    }

    /// `upstreamQueryBytes` written into `target` (at least `bytes.count` bytes; `bytes` at least a header).
    static func writeUpstreamQuery(_ bytes: [UInt8], id: UInt16, opt: ClientOPT?, udpPayloadSize: UInt16,
                                   into target: UnsafeMutableRawBufferPointer) {
        bytes.withUnsafeBytes { target.copyMemory(from: $0) }
        target[0] = UInt8(id >> 8)
        target[1] = UInt8(truncatingIfNeeded: id)
        if let opt {
            target[opt.classAt] = UInt8(udpPayloadSize >> 8)
            target[opt.classAt + 1] = UInt8(truncatingIfNeeded: udpPayloadSize)
        }
    }

    /// The reply to a forwarded query once the upstreams answered over the pool (nil: all failed).
    package func complete(_ request: ForwardRequest, upstream: DNSUpstreamReply?) -> [UInt8] {
        switch upstream {
        case .wire(let bytes, let scan): return complete(request, wire: bytes, scan: scan)
        case .message(let reply): return complete(request, upstreamReply: reply)
        case nil: return complete(request, upstreamReply: nil)
        }
    }

    /// The miss path's common case: an upstream UDP reply checked on its bytes (`scan`), cached and
    /// learnt from as bytes and passed on with the client's id; parsed only when it has to be re-encoded
    /// (OPT presence differs from the client's, or too big).
    func complete(_ request: ForwardRequest, wire bytes: [UInt8], scan: DNSWireScan) -> [UInt8] {
        let code = scan.responseCode
        // The name's bucket in the learned set is a cache miss (a full set of random names): its load
        // starts now and overlaps the cache's store and the walk over the answers.
        if request.decision.allowingRule != nil, code == .noError { learned.prefetch(hostname: request.name) }
        cache.store(bytes, scan: scan, key: request.cacheKey, now: learned.now())
        if code == .nameError { counters.increment(.nxdomainUpstream) }
        if let (group, rule) = request.decision.allowingRule, code == .noError {
            var addresses: [(address: IPAddress, ttl: UInt32)] = []
            scan.forEachResolvedAddress(in: bytes) { data, ttl in
                switch data {
                case .a(let value): addresses.append((.v4(value), ttl))
                case .aaaa(let value): addresses.append((.v6(value), ttl))
                default: break
                }
            }
            learn(addresses, group: group, rule: rule, decision: request.decision, hostname: request.name)
        }
        if let reply = request.passedOn(bytes, replyHasEDNS: scan.hasOPT) { return reply }
        guard let reply = try? DNSMessage(parsing: bytes) else {
            counters.increment(.servfail)
            return request.serverFailure()
        }
        return request.forClient(reply)
    }

    /// The reply to a forwarded query once the upstreams answered over fresh sockets or TCP
    /// (`upstreamReply`: the first usable answer as received, id still the upstream leg's; nil: all
    /// failed), re-encoded for the client.
    func complete(_ request: ForwardRequest, upstreamReply: DNSMessage?) -> [UInt8] {
        guard let reply = upstreamReply else {
            counters.increment(.servfail)
            return request.serverFailure()
        }
        cache.store(reply, key: request.cacheKey, now: learned.now())
        if reply.responseCode == .nameError { counters.increment(.nxdomainUpstream) }
        teach(reply, decision: request.decision, hostname: request.name)
        return request.forClient(reply)
    }

    /// The UDP size limit for a reply to a query whose OPT record announced `udpPayloadSize` (nil: none):
    /// 512 without EDNS, else its buffer size within our bound.
    private func udpLimit(_ udpPayloadSize: UInt16?) -> Int {
        guard let udpPayloadSize else { return 512 }
        return min(max(Int(udpPayloadSize), 512), max(configuration.maxUDPReplySize, 512))
    }

    private func report(_ findings: [Finding], policy: DNSPolicy, source: IPAddress, hostname: String) {
        guard !findings.isEmpty, let sink = sink.withLock({ $0 }) else { return }
        for finding in findings {
            sink(DNSFinding(policyID: policy.policyID, source: source, hostname: hostname, finding: finding))
        }
    }

    /// Binds the answer's addresses (through CNAMEs, each for its chain TTL) to the allowing rule.
    private func teach(_ reply: DNSMessage, decision: DNSDecision, hostname: Prehashed<String>) {
        guard let (group, rule) = decision.allowingRule, reply.responseCode == .noError,
              case .success(let resolution) = reply.resolveAddresses() else { return }
        var addresses: [(address: IPAddress, ttl: UInt32)] = []
        for answer in resolution.addresses {
            switch answer.address {
            case .a(let value): addresses.append((.v4(value), answer.chainTTL))
            case .aaaa(let value): addresses.append((.v6(value), answer.chainTTL))
            default: continue
            }
        }
        learn(addresses, group: group, rule: rule, decision: decision, hostname: hostname)
    }

    private func learn(_ addresses: [(address: IPAddress, ttl: UInt32)], group: Int, rule: Int,
                       decision: DNSDecision, hostname: Prehashed<String>) {
        guard !addresses.isEmpty else { return }
        learned.learn(hostname: hostname, group: group, rule: rule, groupID: decision.verdict.sourceGroup ?? "",
                      ruleID: decision.verdict.rule ?? "", addresses: addresses)
        counters.increment(.learnedAddresses, by: UInt64(addresses.count))
    }

    /// A cached answer dressed as the reply to this query: its id, its question as written, its EDNS.
    private func cachedReply(_ cached: DNSMessage, to query: DNSMessage) -> DNSMessage {
        var reply = query.response(code: cached.responseCode, answers: cached.answers, authorities: cached.authorities,
                                   udpPayloadSize: UInt16(configuration.maxUDPReplySize))
        reply.additionals = cached.additionals
        reply.header.authenticData = cached.header.authenticData && (query.edns?.dnssecOK == true
            || query.header.authenticData)
        reply.responseCode = cached.responseCode
        return reply
    }

    /// One upstream over fresh sockets: UDP, then TCP when the answer was truncated. Nil on timeout, error
    /// or an error rcode.
    private func exchange(_ bytes: [UInt8], _ outgoing: DNSMessage, _ server: SocketAddress) async -> DNSMessage? {
        let timeout = configuration.upstreamTimeout
        let started = CoarseClock.preciseMicroseconds()
        do {
            counters.increment(.upstreamQueries)
            var reply = try await upstream.exchangeUDP(bytes, expecting: outgoing, server: server, timeout: timeout)
            if reply.header.isTruncated {
                counters.increment(.upstreamTruncated)
                counters.increment(.upstreamQueries)
                reply = try await upstream.exchangeTCP(bytes, expecting: outgoing, server: server, timeout: timeout)
            }
            counters.recordUpstreamLatency(microseconds: CoarseClock.preciseMicroseconds() &- started)
            switch reply.responseCode {
            case .noError, .nameError:
                return reply
            default:
                counters.increment(.upstreamErrors)  // SERVFAIL, REFUSED, ...: the next upstream may do better
                return nil
            }
        } catch DNSUpstreamError.timeout {
            counters.increment(.upstreamTimeouts)
            return nil
        } catch {
            counters.increment(.upstreamErrors)
            return nil
        }
    }
}

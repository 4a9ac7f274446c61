// The DNS proxy wired into `sluice run`: its command-line options (`--dns-*`, one OptionGroup so
// RunCommand stays small), feeding the proxy every deployed policy (or the `--policy` file while the
// store has none), sending its findings to the API's FindingRecorder, and showing its learned
// addresses, counters and latency histogram through the API's DNSProxyControl.
import ArgumentParser
import Foundation
import NIOCore
import SluiceAPI
import SluiceDNS
import SluicePolicy
import SluiceStore

/// The API's view of the running proxy. Called from API handlers on any task.
struct DNSProxyAdapter: DNSProxyControl {
    let proxy: DNSProxy

    var isPresent: Bool { true }

    func cacheEntries() async -> [DNSCacheEntry] {
        let now = CoarseClock.nowMilliseconds()
        let offset = proxy.learned.now() &- now  // a test clock offset, zero in production
        return proxy.learned.entries().map { entry in
            DNSCacheEntry(
                hostname: entry.hostname,
                addresses: entry.addresses.map {
                    DNSCacheEntry.Address(
                        address: "\($0.address)", expiresAt: CoarseClock.date(ofMilliseconds: $0.expiresAt &- offset,
                                                                              now: now))
                },
                rule: "\(entry.groupID)/\(entry.ruleID)")
        }
    }

    func counters() async -> [String: UInt64] {
        var counters = proxy.counters.snapshot()
        let learned = proxy.learned.statistics()
        counters["learned_entries"] = UInt64(learned.entries)
        counters["learned_evicted"] = learned.evicted
        counters["learned_expired"] = learned.expired
        counters["cache_entries"] = UInt64(proxy.cache.count)
        counters["cache_evicted"] = proxy.cache.evicted
        let histogram = proxy.counters.upstreamLatency()
        for (bound, count) in histogram.cumulative {
            counters["upstream_latency_us_le_\(bound.map(String.init) ?? "inf")"] = count
        }
        counters["upstream_latency_us_sum"] = histogram.sumMicroseconds
        counters["upstream_latency_us_count"] = histogram.count
        return counters
    }
}

/// `sluice run`'s DNS proxy options (docs/dns.md has the defaults and why).
struct DNSProxyOptions: ParsableArguments {
    @Option(name: .customLong("dns-listen"), help: "Run the DNS proxy on ADDR:PORT, UDP and TCP (repeatable).")
    var listen: [String] = []

    @Option(
        name: .customLong("dns-upstream"),
        help: "Upstream resolver ADDR[:PORT] for the DNS proxy (repeatable, tried in order; port 53 by default).")
    var upstreams: [String] = []

    @Option(name: .customLong("dns-learned-grace"),
            help: "Seconds a learned address stays usable after its record's TTL ran out.")
    var learnedGrace: UInt32 = LearnedAddressConfiguration().graceSeconds

    @Option(name: .customLong("dns-learned-minimum"),
            help: "Smallest TTL (seconds) a learned address is kept for, whatever the record says.")
    var learnedMinimum: UInt32 = LearnedAddressConfiguration().minimumTTLSeconds

    @Option(name: .customLong("dns-learned-max-entries"),
            help: "Most learned (hostname, rule, address) bindings; the oldest is evicted beyond it.")
    var learnedMaxEntries: Int = LearnedAddressConfiguration().maxEntries

    @Option(name: .customLong("dns-cache-entries"), help: "Most answers the DNS proxy caches (0: no cache).")
    var cacheEntries: Int = DNSCacheConfiguration().maxEntries

    @Option(name: .customLong("dns-threads"), help: """
        UDP threads of the DNS proxy, each with its own socket on the listen port (default: one per CPU; \
        fewer keeps them off the dataplane's worker cores).
        """)
    var threads: Int?

    @Flag(name: .customLong("dns-redirect"), help: """
        Redirect UDP/TCP port 53 from the inside interface to the DNS proxy, whatever resolver it was \
        sent to (--dataplane xdp; the proxy must listen on the inside interface's primary address).
        """)
    var redirect = false

    /// The local port redirected DNS goes to (the first --dns-listen's), when --dns-redirect is on.
    var redirectPort: Int? {
        guard redirect, let first = listen.first else { return nil }
        return try? ListenAddress(first).port
    }

    func validate() throws {
        if learnedMaxEntries < 1 { throw ValidationError("--dns-learned-max-entries must be at least 1") }
        if cacheEntries < 0 { throw ValidationError("--dns-cache-entries must not be negative") }
        if let threads, threads < 1 { throw ValidationError("--dns-threads must be at least 1") }
        if redirect && listen.isEmpty { throw ValidationError("--dns-redirect needs --dns-listen") }
        if !listen.isEmpty && upstreams.isEmpty {
            throw ValidationError("--dns-listen needs at least one --dns-upstream")
        }
    }

    /// A proxy for these options, or nil when no `--dns-listen` was given.
    func makeProxy() throws -> DNSProxy? {
        guard !listen.isEmpty else { return nil }
        guard !upstreams.isEmpty else { throw ValidationError("--dns-listen needs at least one --dns-upstream") }
        let listenAddresses = try listen.map { text -> SocketAddress in
            let parsed = try ListenAddress(text)
            return try SocketAddress(ipAddress: parsed.host, port: parsed.port)
        }
        var configuration = DNSProxyConfiguration(
            listen: listenAddresses, upstreams: try upstreams.map(DNSProxySetup.upstreamAddress))
        configuration.learned.graceSeconds = learnedGrace
        configuration.learned.minimumTTLSeconds = learnedMinimum
        configuration.learned.maxEntries = learnedMaxEntries
        configuration.cache.maxEntries = cacheEntries
        configuration.udpThreads = threads
        return DNSProxy(configuration: configuration)
    }
}

enum DNSProxySetup {

    /// `ADDR`, `ADDR:PORT`, `[IPv6]:PORT` or a bare IPv6 address; port 53 when left out.
    static func upstreamAddress(_ text: String) throws -> SocketAddress {
        do {
            if text.hasPrefix("[") || (text.filter { $0 == ":" }.count == 1) {
                let parsed = try ListenAddress(text)
                return try SocketAddress(ipAddress: parsed.host, port: parsed.port)
            }
            return try SocketAddress(ipAddress: text, port: 53)
        } catch {
            throw ValidationError("--dns-upstream expects ADDR[:PORT] with a numeric address, got '\(text)'")
        }
    }

    /// Feeds the proxy every deployed policy and sends its findings to the recorder. `local` (the
    /// `--policy` file) is in force from now on and whenever the store has no active policy, the same
    /// precedence the dataplane follows (XDPDataplane.swift), so DNS and packets are judged alike.
    static func connect(_ proxy: DNSProxy, deployer: PolicyDeployer, findings: FindingRecorder,
                        local: (id: String, request: PolicyRequest)?) async {
        let localPolicy = local.map { DNSPolicy(policyID: $0.id, mode: $0.request.mode, config: $0.request.policy) }
        if let localPolicy { proxy.setPolicy(localPolicy) }
        await deployer.addObserver { document in
            proxy.setPolicy(document.map {
                DNSPolicy(policyID: $0.policyID, version: $0.version, mode: $0.mode, config: $0.config)
            } ?? localPolicy)
        }
        proxy.setFindingSink { finding in
            let now = Date()
            let record = AuditFinding(
                type: "dns_deny", policyID: finding.policyID, sourceGroup: finding.finding.sourceGroup,
                rule: finding.finding.rule, hostname: finding.hostname, enforced: finding.finding.enforced,
                firstSeen: now, lastSeen: now)
            Task { await findings.record(record) }
        }
    }
}

// The DNS proxy wired into `sluice run`: parsing `--dns-listen` / `--dns-upstream`, feeding the proxy
// every deployed policy, sending its findings to the API's FindingRecorder, and showing its learned
// addresses and counters through the API's DNSProxyControl.
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

enum DNSProxySetup {
    /// A proxy for the command line's addresses, or nil when no `--dns-listen` was given.
    static func makeProxy(listen: [String], upstreams: [String]) throws -> DNSProxy? {
        guard !listen.isEmpty else { return nil }
        guard !upstreams.isEmpty else { throw ValidationError("--dns-listen needs at least one --dns-upstream") }
        let listenAddresses = try listen.map { text -> SocketAddress in
            let parsed = try ListenAddress(text)
            return try SocketAddress(ipAddress: parsed.host, port: parsed.port)
        }
        return DNSProxy(configuration: DNSProxyConfiguration(listen: listenAddresses,
                                                            upstreams: try upstreams.map(upstreamAddress)))
    }

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

    /// Feeds the proxy every deployed policy and sends its findings to the recorder.
    static func connect(_ proxy: DNSProxy, deployer: PolicyDeployer, findings: FindingRecorder) async {
        await deployer.addObserver { document in
            proxy.setPolicy(document.map {
                DNSPolicy(policyID: $0.policyID, version: $0.version, mode: $0.mode, config: $0.config)
            })
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

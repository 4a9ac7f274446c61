// The DNS proxy's counters and upstream latency histogram: relaxed atomics bumped by the UDP threads and
// the TCP query tasks, read as one snapshot for `/api/v1/stats` and `/metrics`. Relaxed is enough: each counter is
// independent and a snapshot is only ever "roughly now".
import Atomics

/// Counter names, as they appear in the snapshot (and in `/api/v1/stats` under `dns`).
public enum DNSCounter: String, CaseIterable, Sendable {
    /// Every query that parsed.
    case queries = "queries_total"
    /// Queries the policy allowed (enforced verdict allow, audit-mode allows included).
    case allowed = "queries_allowed"
    /// Queries the policy denied (answered NXDOMAIN).
    case denied = "queries_denied"
    /// Queries the policy logic denied but an audit mode let through.
    case audited = "queries_audited"
    /// NXDOMAIN answers the proxy gave because of policy.
    case nxdomainPolicy = "nxdomain_policy"
    /// NXDOMAIN answers that came from upstream.
    case nxdomainUpstream = "nxdomain_upstream"
    /// SERVFAIL answers: every upstream failed.
    case servfail = "servfail"
    /// FORMERR answers to queries that did not parse or were not one standard question.
    case formerr = "formerr"
    /// Unparsable datagrams dropped without an answer (no header to echo, or a response sent to us).
    case droppedMalformed = "dropped_malformed"
    /// Queries dropped because too many were in flight.
    case droppedOverload = "dropped_overload"
    /// REFUSED answers: no active policy, so nothing is allowed.
    case refusedNoPolicy = "refused_no_policy"
    /// NOTIMP answers to opcodes other than QUERY.
    case notImplemented = "notimp"
    /// Allowed queries answered from the cache.
    case cacheHits = "cache_hits"
    /// Allowed queries that went upstream.
    case cacheMisses = "cache_misses"
    /// Exchanges sent upstream (UDP and TCP).
    case upstreamQueries = "upstream_queries"
    /// Upstream exchanges that timed out.
    case upstreamTimeouts = "upstream_timeouts"
    /// Upstream exchanges that failed otherwise (connection refused, error rcode, unparsable).
    case upstreamErrors = "upstream_errors"
    /// UDP answers with TC set, retried over TCP.
    case upstreamTruncated = "upstream_truncated_retried_tcp"
    /// Datagrams from upstream that did not match the query (id, question, source) and were ignored.
    case upstreamMismatched = "upstream_mismatched"
    /// Datagrams the UDP threads could not send (a socket's buffer full, or the send failed) and dropped.
    case sendDropped = "udp_send_dropped"
    /// Addresses taught to the learned set (one per address per answer).
    case learnedAddresses = "learned_addresses"
    /// Learned bindings withdrawn by a deny.
    case learnedWithdrawn = "learned_withdrawn"
}

extension DNSCounter {
    /// The counter's position in `allCases` (declaration order) without searching it: a case of an enum
    /// without payloads is stored as its declaration index (one byte for fewer than 256 cases).
    /// `DNSProxyCountersTests` checks it against `allCases` for every case. Every query bumps several
    /// counters, and the search was a loop over the cases each time.
    @inline(__always)
    var ordinal: Int { Int(unsafeBitCast(self, to: UInt8.self)) }
}

/// Upper bounds (microseconds) of the upstream latency histogram buckets; one more bucket is +Inf.
public let dnsUpstreamLatencyBucketsMicroseconds: [UInt64] = [
    250, 500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
]

/// A histogram snapshot: cumulative counts per upper bound (Prometheus style) and the sum.
public struct DNSLatencyHistogram: Sendable, Equatable {
    /// (upper bound in microseconds or nil for +Inf, observations at or below it).
    public var cumulative: [(boundMicroseconds: UInt64?, count: UInt64)]
    /// Sum of all observations in microseconds.
    public var sumMicroseconds: UInt64
    /// Number of observations.
    public var count: UInt64

    public static func == (lhs: DNSLatencyHistogram, rhs: DNSLatencyHistogram) -> Bool {
        lhs.sumMicroseconds == rhs.sumMicroseconds && lhs.count == rhs.count
            && lhs.cumulative.map(\.count) == rhs.cumulative.map(\.count)
    }

    /// What was observed after `earlier` (a snapshot of the same histogram).
    public func since(_ earlier: DNSLatencyHistogram) -> DNSLatencyHistogram {
        DNSLatencyHistogram(
            cumulative: zip(cumulative, earlier.cumulative).map { ($0.boundMicroseconds, $0.count &- $1.count) },
            sumMicroseconds: sumMicroseconds &- earlier.sumMicroseconds, count: count &- earlier.count)
    }

    /// The smallest bucket bound under which at least `quantile` of observations fall (nil: +Inf or none).
    public func bound(forQuantile quantile: Double) -> UInt64? {
        guard count > 0 else { return nil }
        let target = UInt64((Double(count) * quantile).rounded(.up))
        return cumulative.first { $0.count >= target }?.boundMicroseconds
    }
}

/// The proxy's counters. Any thread may bump or read them.
public final class DNSProxyCounters: Sendable {
    private let values: [ManagedAtomic<UInt64>]
    private let buckets: [ManagedAtomic<UInt64>]
    private let latencySum = ManagedAtomic<UInt64>(0)

    /// All zero.
    public init() {
        values = DNSCounter.allCases.map { _ in ManagedAtomic(0) }
        buckets = (0...dnsUpstreamLatencyBucketsMicroseconds.count).map { _ in ManagedAtomic(0) }
    }

    /// Adds `amount` to a counter.
    @inline(__always)
    public func increment(_ counter: DNSCounter, by amount: UInt64 = 1) {
        values[counter.ordinal].wrappingIncrement(by: amount, ordering: .relaxed)
    }

    /// The current value of one counter.
    public func value(_ counter: DNSCounter) -> UInt64 {
        values[counter.ordinal].load(ordering: .relaxed)
    }

    /// Records one upstream exchange's latency.
    public func recordUpstreamLatency(microseconds: UInt64) {
        let index = dnsUpstreamLatencyBucketsMicroseconds.firstIndex { microseconds <= $0 }
            ?? dnsUpstreamLatencyBucketsMicroseconds.count
        buckets[index].wrappingIncrement(ordering: .relaxed)
        latencySum.wrappingIncrement(by: microseconds, ordering: .relaxed)
    }

    /// Every counter by name.
    public func snapshot() -> [String: UInt64] {
        var result: [String: UInt64] = [:]
        for (index, counter) in DNSCounter.allCases.enumerated() {
            result[counter.rawValue] = values[index].load(ordering: .relaxed)
        }
        return result
    }

    /// The upstream latency histogram.
    public func upstreamLatency() -> DNSLatencyHistogram {
        var running: UInt64 = 0
        var cumulative: [(UInt64?, UInt64)] = []
        for (index, bucket) in buckets.enumerated() {
            running += bucket.load(ordering: .relaxed)
            let bound = index < dnsUpstreamLatencyBucketsMicroseconds.count
                ? dnsUpstreamLatencyBucketsMicroseconds[index] : nil
            cumulative.append((bound, running))
        }
        return DNSLatencyHistogram(cumulative: cumulative, sumMicroseconds: latencySum.load(ordering: .relaxed),
                                   count: running)
    }
}

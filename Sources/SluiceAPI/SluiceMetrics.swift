// Prometheus metrics of the node, served as text on their own listener (MetricsServer). Two kinds:
// instruments updated as things happen (API requests, store writes) and values read at scrape time
// from the components that own them (policy generation, dataplane and DNS counters, findings,
// wiretap), so a scrape always shows the current state and the hot path never touches a metric.
import Foundation
import Hummingbird
import Prometheus

/// The node's metrics registry. Safe to use from any task (the registry locks internally).
public final class SluiceMetrics: Sendable {
    /// The swift-prometheus registry every metric lives in.
    public let registry: PrometheusCollectorRegistry

    /// API latency buckets: management calls take milliseconds; a policy write that waits for the
    /// dataplane's confirmation may take up to the 2 s bound.
    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
    ]
    /// Store write buckets: one fsync'd SQLite transaction is a fraction of a millisecond to tens of ms.
    static let storeBuckets: [Duration] = [
        .microseconds(250), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    /// Counts one API request and its latency under its route template (`/api/v1/policies/:id`,
    /// never the concrete path, so ids cannot explode the label space).
    public func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        registry.makeCounter(
            descriptor: Self.descriptor("sluice_api_requests_total", "API requests by route, method and status"),
            labels: [("route", route), ("method", method), ("status", String(status))]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: Self.descriptor("sluice_api_request_duration_seconds", "API request latency"),
            labels: [("route", route), ("method", method)], buckets: Self.latencyBuckets
        ).record(duration)
    }

    /// Records the latency of one store write (`op`: create_policy, set_performance_mode, ...).
    public func recordStoreWrite(op: String, duration: Duration, failed: Bool) {
        registry.makeDurationHistogram(
            descriptor: Self.descriptor("sluice_store_write_duration_seconds", "Durable store write latency"),
            labels: [("op", op)], buckets: Self.storeBuckets
        ).record(duration)
        if failed {
            registry.makeCounter(
                descriptor: Self.descriptor("sluice_store_write_errors_total", "Failed store writes"),
                labels: [("op", op)]
            ).increment()
        }
    }

    /// A full metric name with its help text (the unit is part of our names already).
    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// Sets a gauge to a value read at scrape time.
    func set(_ name: String, _ value: Double, help: String, labels: [(String, String)] = []) {
        registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels).set(value)
    }

    /// Reads the current state of every component and renders the Prometheus text exposition.
    public func scrape(_ deps: APIDependencies) async -> String {
        let state = await deps.deployer.state
        set("sluice_policy_generation", Double(state.generation), help: "Generation of the deployed policy")
        set("sluice_policy_compiled", state.compiled ? 1 : 0, help: "1 when the active policy compiled")
        for outcome in ["confirmed", "unconfirmed", "failed", "absent"] {
            set(
                "sluice_policy_dataplane_state", state.dataplane == outcome ? 1 : 0,
                help: "1 for the dataplane's answer to the latest deployment", labels: [("state", outcome)])
        }
        for mode in ["audit", "enforce"] {
            set(
                "sluice_policy_active_mode", state.mode?.rawValue == mode ? 1 : 0,
                help: "1 for the mode of the active policy", labels: [("mode", mode)])
        }
        let status = await deps.dataplane.status()
        set("sluice_dataplane_running", status.running ? 1 : 0, help: "1 when the dataplane forwards traffic")
        set("sluice_dataplane_confirmed_generation", Double(status.confirmedGeneration ?? 0),
            help: "Policy generation every dataplane worker runs")
        // One metric with a label per counter: the dataplane names its counters, and a label can
        // carry any name without colliding with the fixed metrics above.
        for (name, value) in await deps.dataplane.counters() {
            set("sluice_dataplane_counter", Double(value), help: "Dataplane counters (/api/v1/stats)",
                labels: [("counter", name)])
        }
        set("sluice_dns_proxy_present", deps.dnsProxy.isPresent ? 1 : 0, help: "1 when a DNS proxy runs")
        let dnsCounters = await deps.dnsProxy.counters()
        for (name, value) in dnsCounters where !name.hasPrefix(Self.dnsLatencyPrefix) {
            set("sluice_dns_counter", Double(value), help: "DNS proxy counters (/api/v1/stats)",
                labels: [("counter", name)])
        }
        set("sluice_findings_dropped", Double(await deps.findings.dropped),
            help: "Audit observations dropped because the in-memory aggregate was full")
        let wiretap = deps.wiretap.statistics
        set("sluice_wiretap_subscribers", Double(wiretap.subscribers), help: "Connected wiretap clients")
        set("sluice_wiretap_published", Double(wiretap.published), help: "Flow events offered to the wiretap")
        set("sluice_wiretap_rate_limited", Double(wiretap.rateLimited),
            help: "Flow events held back by the once-per-second-per-flow limit")
        set("sluice_wiretap_dropped", Double(wiretap.dropped), help: "Flow events dropped from full client buffers")
        return registry.emitToString() + Self.dnsExposition(dnsCounters)
    }

    /// Prefix of the DNS proxy's upstream latency histogram in its counters (`/api/v1/stats` keys:
    /// `upstream_latency_us_le_<bound|inf>` cumulative, `upstream_latency_us_sum`, `_count`).
    static let dnsLatencyPrefix = "upstream_latency_us_"

    /// The DNS proxy's main counters as Prometheus counters and its upstream latency as a real
    /// histogram (seconds, cumulative `le` buckets), written by hand because the values are owned
    /// and counted by the proxy and only read here; the registry's instruments can only be
    /// incremented, not set to a value read at scrape time. Empty when no proxy runs.
    static func dnsExposition(_ counters: [String: UInt64]) -> String {
        guard !counters.isEmpty else { return "" }
        var text = ""
        func counterFamily(_ name: String, _ help: String, label: String, _ values: [(String, String)]) {
            let lines = values.compactMap { value, key in counters[key].map { "\(name){\(label)=\"\(value)\"} \($0)\n" } }
            guard !lines.isEmpty else { return }
            text += "# HELP \(name) \(help)\n# TYPE \(name) counter\n" + lines.joined()
        }
        counterFamily("sluice_dns_queries_total", "DNS queries judged by policy, by result", label: "result",
                      [("allowed", "queries_allowed"), ("denied", "queries_denied"), ("audited", "queries_audited")])
        counterFamily("sluice_dns_nxdomain_total", "NXDOMAIN answers, by cause", label: "cause",
                      [("policy", "nxdomain_policy"), ("upstream", "nxdomain_upstream")])
        counterFamily("sluice_dns_cache_total", "Allowed queries answered from the cache or upstream", label: "result",
                      [("hit", "cache_hits"), ("miss", "cache_misses")])
        // The histogram: bounds in microseconds in the keys, seconds in the exposition.
        var buckets: [(bound: UInt64?, count: UInt64)] = []
        for (key, value) in counters where key.hasPrefix(Self.dnsLatencyPrefix + "le_") {
            let bound = key.dropFirst(Self.dnsLatencyPrefix.count + 3)
            if bound == "inf" {
                buckets.append((nil, value))
            } else if let microseconds = UInt64(bound) {
                buckets.append((microseconds, value))
            }
        }
        guard !buckets.isEmpty else { return text }
        buckets.sort { ($0.bound ?? .max) < ($1.bound ?? .max) }
        let name = "sluice_dns_upstream_latency_seconds"
        text += "# HELP \(name) Latency of exchanges with upstream resolvers\n# TYPE \(name) histogram\n"
        for (bound, count) in buckets {
            let le = bound.map { "\(Double($0) / 1_000_000)" } ?? "+Inf"
            text += "\(name)_bucket{le=\"\(le)\"} \(count)\n"
        }
        let sum = Double(counters[Self.dnsLatencyPrefix + "sum"] ?? 0) / 1_000_000
        text += "\(name)_sum \(sum)\n\(name)_count \(counters[Self.dnsLatencyPrefix + "count"] ?? buckets.last?.count ?? 0)\n"
        return text
    }
}

/// Counts every request by route template, method and final status, errors included (they are
/// thrown through this middleware and become responses further out).
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: SluiceMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(request, context, status: response.status.code, since: start)
            return response
        } catch let error as any HTTPResponseError {
            record(request, context, status: error.status.code, since: start)
            throw error
        } catch {
            record(request, context, status: 500, since: start)
            throw error
        }
    }

    func record(_ request: Request, _ context: Context, status: Int, since start: ContinuousClock.Instant) {
        let route = context.endpointPath ?? "unmatched"
        metrics.recordRequest(
            route: route, method: request.method.rawValue, status: status, duration: ContinuousClock.now - start)
    }
}

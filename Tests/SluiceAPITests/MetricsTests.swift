// GET /metrics on the metrics listener: request counts by route template and status, latency,
// policy generation, store write latency, and the counters a dataplane and a DNS proxy expose
// (gauges print as doubles: 1.0).
import Foundation
import Hummingbird
import HummingbirdTesting
import SluiceAPI
import SluiceStore
import Testing

/// A dataplane that reports fixed counters and confirms every publication at once.
struct CountingDataplane: DataplaneControl {
    var isPresent: Bool { true }
    func publish(_ deployment: PolicyDeployment?) async throws {}
    func status() async -> DataplaneStatus {
        DataplaneStatus(kind: "fake", running: true, confirmedGeneration: 1, detail: "synthetic")
    }
    func counters() async -> [String: UInt64] { ["rx_packets": 1234, "drop_no_policy": 5] }
    func setPerformanceMode(_ enabled: Bool) async {}
}

/// A DNS proxy with counters and one cache entry.
struct CountingDNSProxy: DNSProxyControl {
    var isPresent: Bool { true }
    func cacheEntries() async -> [DNSCacheEntry] {
        [DNSCacheEntry(hostname: "api.example.com",
                       addresses: [.init(address: "203.0.113.7",
                                         expiresAt: Date(timeIntervalSince1970: 1_800_000_060))],
                       rule: "branch-office/allow-api")]
    }
    /// The keys DNSProxyAdapter (sluice run) gives: counters and the cumulative latency histogram.
    func counters() async -> [String: UInt64] {
        [
            "queries": 42, "queries_allowed": 40, "queries_denied": 2, "nxdomain_policy": 2, "nxdomain_upstream": 1,
            "upstream_latency_us_le_250": 3, "upstream_latency_us_le_1000": 7, "upstream_latency_us_le_inf": 8,
            "upstream_latency_us_sum": 2_500_000, "upstream_latency_us_count": 8,
        ]
    }
}

@Suite struct MetricsTests {
    @Test func scrapeShowsRequestsPolicyStoreAndComponentCounters() async throws {
        let metrics = SluiceMetrics()
        var setup = try await APIFixture(metrics: metrics)
        let dataplane = CountingDataplane()
        setup.deps.dataplane = dataplane
        setup.deps.dnsProxy = CountingDNSProxy()
        setup.deps.deployer = PolicyDeployer(store: setup.deps.store, dataplane: dataplane)
        let fixture = setup
        try await fixture.application().test(.router) { client in
            let put = try await client.execute(
                uri: "/api/v1/policies/by-name/office-egress", method: .put,
                headers: headers(token: fixture.adminToken),
                body: body(policyEnvelope()))
            #expect(put.status == .created)
            _ = try await client.execute(uri: "/api/v1/policies/by-name/missing", method: .get,
                                         headers: headers(token: fixture.adminToken))
        }
        let deps = fixture.deps
        try await Application(router: MetricsServer.router(deps)).test(.router) { client in
            let response = try await client.execute(uri: "/metrics", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = String(buffer: response.body)
            for expected in [
                #"sluice_api_requests_total{route="/api/v1/policies/by-name/{name}",method="PUT",status="201"} 1"#,
                #"sluice_api_requests_total{route="/api/v1/policies/by-name/{name}",method="GET",status="404"} 1"#,
                #"sluice_api_request_duration_seconds_count{route="/api/v1/policies/by-name/{name}",method="PUT"} 1"#,
                #"sluice_store_write_duration_seconds_count{op="upsert_policy"} 1"#,
                "sluice_policy_generation 1.0",
                #"sluice_policy_dataplane_state{state="confirmed"} 1.0"#,
                #"sluice_policy_active_mode{mode="audit"} 1.0"#,
                #"sluice_dataplane_counter{counter="rx_packets"} 1234.0"#,
                #"sluice_dns_counter{counter="queries"} 42.0"#,
                "# TYPE sluice_dns_queries_total counter",
                #"sluice_dns_queries_total{result="allowed"} 40"#,
                #"sluice_dns_queries_total{result="denied"} 2"#,
                #"sluice_dns_nxdomain_total{cause="policy"} 2"#,
                #"sluice_dns_nxdomain_total{cause="upstream"} 1"#,
                "# TYPE sluice_dns_upstream_latency_seconds histogram",
                "sluice_dns_upstream_latency_seconds_bucket{le=\"0.00025\"} 3\n"
                    + "sluice_dns_upstream_latency_seconds_bucket{le=\"0.001\"} 7\n"
                    + "sluice_dns_upstream_latency_seconds_bucket{le=\"+Inf\"} 8\n"
                    + "sluice_dns_upstream_latency_seconds_sum 2.5\n"
                    + "sluice_dns_upstream_latency_seconds_count 8\n",
                "sluice_dataplane_running 1.0",
                "sluice_wiretap_subscribers 0.0",
            ] {
                #expect(text.contains(expected), "missing \(expected) in:\n\(text)")
            }
            // The histogram is one family, not a gauge per bucket.
            #expect(!text.contains("upstream_latency_us_le"), "histogram buckets leaked into the gauges:\n\(text)")
        }
    }
}

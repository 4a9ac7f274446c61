// /health, /ready (named checks, 503 until a policy is deployed), stats, performance mode gating
// the findings (503 with how to enable), findings filters, dns-cache shape, admin log.
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SluiceAPI
import SluiceStore
import Testing

@Suite struct OperationsRouteTests {
    @Test func readyNamesItsChecks() async throws {
        let fixture = try await APIFixture()
        try await fixture.application().test(.router) { client in
            let before = try await client.execute(uri: "/ready", method: .get)
            #expect(before.status == .serviceUnavailable)
            let checks = try #require(try json(before)["checks"] as? [[String: String]])
            #expect(checks.map { $0["name"] ?? "" } == ["store", "policy", "dataplane", "dns_proxy"])
            #expect(checks.first { $0["name"] == "dataplane" }?["status"] == "absent")
            #expect(checks.first { $0["name"] == "policy" }?["status"] == "fail")

            _ = try await client.execute(
                uri: "/api/v1/policies/by-name/office-egress", method: .put,
                headers: headers(token: fixture.adminToken),
                body: body(policyEnvelope()))
            let after = try await client.execute(uri: "/ready", method: .get)
            #expect(after.status == .ok)
            #expect(try json(after)["ready"] as? Bool == true)

            let stats = try await client.execute(
                uri: "/api/v1/stats", method: .get, headers: headers(token: fixture.readonlyToken))
            let policy = try #require(try json(stats)["policy"] as? [String: Any])
            #expect(policy["mode"] as? String == "audit")
            #expect((policy["generation"] as? Int ?? 0) >= 1)
            #expect((try json(stats)["dataplane"] as? [String: Any])?["kind"] as? String == "none")
        }
    }

    @Test func performanceModeGatesFindings() async throws {
        let fixture = try await APIFixture()
        try await fixture.application().test(.router) { client in
            let auth = headers(token: fixture.adminToken)
            let initial = try await client.execute(
                uri: "/api/v1/settings/performance-mode", method: .get, headers: auth)
            #expect(try json(initial)["enabled"] as? Bool == true)
            let off = try await client.execute(
                uri: "/api/v1/settings/performance-mode", method: .put, headers: auth,
                body: body(#"{"enabled": false}"#))
            #expect(try json(off)["enabled"] as? Bool == false)
            let gated = try await client.execute(uri: "/api/v1/audit/findings", method: .get, headers: auth)
            #expect(gated.status == .serviceUnavailable)
            #expect((try json(gated)["error"] as? String)?.contains("PUT /api/v1/settings/performance-mode") == true)
            let badBody = try await client.execute(
                uri: "/api/v1/settings/performance-mode", method: .put, headers: auth,
                body: body(#"{"enabled": "yes"}"#))
            #expect(badBody.status == .badRequest)
            _ = try await client.execute(
                uri: "/api/v1/settings/performance-mode", method: .put, headers: auth, body: body(#"{"enabled": true}"#)
            )

            let t0 = Date(timeIntervalSince1970: 1_800_000_000)
            for (group, at, enforced) in [
                ("branch-office", 0.0, false), ("branch-office", 10, false), ("lab", 20, true),
            ] {
                await fixture.deps.findings.record(
                    AuditFinding(
                        type: "packet_deny", policyID: "p1", sourceGroup: group, rule: nil, destination: "203.0.113.7",
                        port: 443, proto: "tcp", enforced: enforced, firstSeen: t0 + at, lastSeen: t0 + at))
            }
            let all = try await client.execute(uri: "/api/v1/audit/findings", method: .get, headers: auth)
            let rows = try #require(try json(all)["findings"] as? [[String: Any]])
            #expect(rows.count == 2)
            #expect(rows[0]["source_group"] as? String == "lab")
            #expect(rows[0]["enforced"] as? Bool == true)
            #expect(rows[1]["count"] as? Int == 2)
            #expect(rows[1]["first_seen"] as? String == "2027-01-15T08:00:00Z")

            let filtered = try await client.execute(
                uri: "/api/v1/audit/findings?source_group=branch-office&finding_type=packet_deny&policy_id=p1&limit=5",
                method: .get, headers: auth)
            #expect((try json(filtered)["findings"] as? [Any])?.count == 1)
            let since = try await client.execute(
                uri: "/api/v1/audit/findings?since=2027-01-15T08:00:15Z", method: .get, headers: auth)
            #expect((try json(since)["findings"] as? [Any])?.count == 1)
            let badQuery = try await client.execute(
                uri: "/api/v1/audit/findings?limit=0&since=yesterday", method: .get, headers: auth)
            #expect(badQuery.status == .badRequest)
            #expect((try json(badQuery)["details"] as? [Any])?.count == 2)

            let cache = try await client.execute(uri: "/api/v1/dns-cache", method: .get, headers: auth)
            #expect(cache.status == .ok)
            #expect((try json(cache)["entries"] as? [Any])?.isEmpty == true)
        }
    }
}

// The rollout workflow of 000_03ae8a53bab02b1f.txt step by step, in-process. Traffic cannot flow
// without the dataplane, so the would-be denies it would report are fed to the FindingRecorder
// directly, the way the dataplane's event collector will: audit mode yields `enforced: false`
// findings, promotion (only the mode changed, If-Match on the version read) turns the same
// decisions into `enforced: true`, and flipping back returns to audit.
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SluiceAPI
import SluicePolicy
import SluiceStore
import Testing

@Suite struct RolloutWorkflowTests {
    /// What the dataplane's collector records for a deny the active policy decides.
    func observeSSHDeny(_ fixture: APIFixture, policyID: String, at time: Date) async throws {
        let state = await fixture.deps.deployer.state
        await fixture.deps.findings.record(
            AuditFinding(
                type: "packet_deny", policyID: policyID, sourceGroup: "branch-office", rule: nil,
                destination: "198.51.100.1", port: 22, proto: "tcp", enforced: state.mode == .enforce,
                firstSeen: time, lastSeen: time))
    }

    @Test func auditReviewPromoteAndFlipBack() async throws {
        let fixture = try await APIFixture()
        try await fixture.application().test(.router) { client in
            let admin = headers(token: fixture.adminToken)
            // "Check Performance Mode First".
            let performance = try await client.execute(
                uri: "/api/v1/settings/performance-mode", method: .get, headers: admin)
            if try json(performance)["enabled"] as? Bool != true {
                _ = try await client.execute(
                    uri: "/api/v1/settings/performance-mode", method: .put, headers: admin,
                    body: body(#"{"enabled": true}"#))
            }

            // Step 1: write the policy in audit mode, by stable name.
            let written = try await client.execute(
                uri: "/api/v1/policies/by-name/office-egress", method: .put, headers: admin,
                body: body(policyEnvelope(mode: "audit")))
            #expect(written.status == .created)
            let record = try json(written)
            let policyID = try #require(record["id"] as? String)
            #expect(record["active"] as? Bool == true)

            // Step 2: the node is ready, and stats show the compiled generation.
            #expect(try await client.execute(uri: "/ready", method: .get).status == .ok)
            let stats = try json(try await client.execute(uri: "/api/v1/stats", method: .get, headers: admin))
            let deployed = try #require(stats["policy"] as? [String: Any])
            #expect(deployed["policy_id"] as? String == policyID && deployed["mode"] as? String == "audit")
            #expect(deployed["compiled"] as? Bool == true)

            // Step 3: representative traffic. SSH is denied by the group's fall-through (no rule allows
            // it): in audit mode the reference evaluator says it is let through and recorded.
            let compiled = try PolicyParser.parseRequest(jsonBytes: Array(policyEnvelope(mode: "audit").utf8)).value
            let ssh = PacketQuery(
                src: IPAddress("10.10.1.20")!, dst: IPAddress("198.51.100.1")!, proto: 6, srcPort: 40_000,
                dstPort: 22, icmpType: 0, icmpCode: 0)
            let auditVerdict = ReferenceEvaluator(compiled).evaluate(ssh, tls: nil)
            #expect(auditVerdict.verdict == .allow && auditVerdict.decision == .deny)
            #expect(auditVerdict.findings.first?.enforced == false)
            let t0 = Date(timeIntervalSince1970: 1_800_000_000)
            try await observeSSHDeny(fixture, policyID: policyID, at: t0)
            try await observeSSHDeny(fixture, policyID: policyID, at: t0 + 1)

            // Step 4: review the evidence.
            let audit = try json(
                try await client.execute(uri: "/api/v1/audit/findings", method: .get, headers: admin))
            let auditRows = try #require(audit["findings"] as? [[String: Any]])
            #expect(auditRows.count == 1)
            #expect(auditRows.first?["enforced"] as? Bool == false && auditRows.first?["count"] as? Int == 2)
            let cache = try await client.execute(uri: "/api/v1/dns-cache", method: .get, headers: admin)
            #expect(try cache.status == .ok && (json(cache)["entries"] as? [Any])?.isEmpty == true)

            // Step 6: promote, changing only the mode (GET, change mode, PUT with If-Match).
            let current = try await client.execute(
                uri: "/api/v1/policies/by-name/office-egress", method: .get, headers: admin)
            let etag = try #require(current.headers[.eTag])
            var promoted = try json(current)
            let body1 = try JSONSerialization.data(withJSONObject: promoted["policy"] as Any, options: .sortedKeys)
            let envelope: [String: Any] = [
                "mode": "enforce", "name": "office-egress", "policy": promoted["policy"] as Any,
            ]
            let put = try await client.execute(
                uri: "/api/v1/policies/by-name/office-egress", method: .put, headers: headers(token: fixture.adminToken,
                [.ifMatch: etag]), body: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: envelope)))
            #expect(put.status == .ok)
            promoted = try json(put)
            #expect(promoted["mode"] as? String == "enforce" && promoted["version"] as? Int == 2)
            let body2 = try JSONSerialization.data(withJSONObject: promoted["policy"] as Any, options: .sortedKeys)
            #expect(body1 == body2, "promotion must not change the policy object")
            // The stale ETag now fails: nobody overwrites a change they did not see.
            let stale = try await client.execute(
                uri: "/api/v1/policies/by-name/office-egress", method: .put,
                headers: headers(token: fixture.adminToken, [.ifMatch: etag]),
                body: body(policyEnvelope(mode: "audit")))
            #expect(stale.status == .preconditionFailed)

            // After promotion: ready, stats say enforce, and the same traffic is now a real deny.
            #expect(try await client.execute(uri: "/ready", method: .get).status == .ok)
            let after = try json(try await client.execute(uri: "/api/v1/stats", method: .get, headers: admin))
            #expect((after["policy"] as? [String: Any])?["mode"] as? String == "enforce")
            try await observeSSHDeny(fixture, policyID: policyID, at: t0 + 10)
            let enforced = try #require(
                try json(try await client.execute(uri: "/api/v1/audit/findings", method: .get, headers: admin))[
                    "findings"] as? [[String: Any]])
            #expect(enforced.map { $0["enforced"] as? Bool } == [true, false], "newest first, both kept")

            // Flip back to audit, again only the mode.
            let again = try await client.execute(
                uri: "/api/v1/policies/by-name/office-egress", method: .get, headers: admin)
            let back: [String: Any] = [
                "mode": "audit", "name": "office-egress", "policy": try json(again)["policy"] as Any,
            ]
            let flipped = try await client.execute(
                uri: "/api/v1/policies/by-name/office-egress", method: .put,
                headers: headers(token: fixture.adminToken, [.ifMatch: try #require(again.headers[.eTag])]),
                body: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: back)))
            #expect(try flipped.status == .ok && (json(flipped)["mode"] as? String) == "audit")
            let versions = try json(
                try await client.execute(uri: "/api/v1/policies/\(policyID)/versions", method: .get, headers: admin))
            #expect((versions["versions"] as? [[String: Any]])?.map { $0["mode"] as? String } == [
                "audit", "enforce", "audit",
            ])
            // The admin log shows every apply and mode flip with its actor.
            let log = try json(try await client.execute(uri: "/api/v1/admin-log", method: .get, headers: admin))
            let actors = (log["entries"] as? [[String: Any]] ?? []).filter { ($0["target"] as? String) == policyID }
            #expect(actors.count >= 3 && actors.allSatisfy { $0["actor"] as? String == "ops-admin" })
        }
    }
}

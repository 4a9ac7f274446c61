// Policy routes in-process: create by name (the rollout command of 000_03ae8a53bab02b1f.txt),
// replace, versions, ETag/If-Match (412), name conflicts (409), validation (400 with paths),
// delete (204, then 404), the single active policy, and the error shape of unknown routes.
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SluiceAPI
import Testing

@Suite struct PolicyRouteTests {
    @Test func rolloutByNameThenPromote() async throws {
        let fixture = try await APIFixture()
        try await fixture.application().test(.router) { client in
            let uri = "/api/v1/policies/by-name/office-egress"
            let created = try await client.execute(
                uri: uri, method: .put, headers: headers(token: fixture.adminToken), body: body(policyEnvelope()))
            #expect(created.status == .created)
            let record = try json(created)
            let id = try #require(record["id"] as? String)
            #expect(record["version"] as? Int == 1)
            #expect(record["mode"] as? String == "audit")
            #expect(record["active"] as? Bool == true)
            #expect((record["deployment"] as? [String: Any])?["dataplane"] as? String == "absent")
            #expect(created.headers[.eTag] == "\"\(id).1\"")
            #expect(created.headers[.location] == "/api/v1/policies/\(id)")

            // Step 6: change only the mode; the same record moves to version 2.
            let promoted = try await client.execute(
                uri: uri, method: .put, headers: headers(token: fixture.adminToken),
                body: body(policyEnvelope(mode: "enforce")))
            #expect(promoted.status == .ok)
            #expect(try json(promoted)["version"] as? Int == 2)
            #expect(try json(promoted)["id"] as? String == id)

            let read = try await client.execute(uri: uri, method: .get, headers: headers(token: fixture.adminToken))
            #expect(read.status == .ok)
            #expect(read.headers[.eTag] == "\"\(id).2\"")
            let policy = try #require(try json(read)["policy"] as? [String: Any])
            #expect(policy["default_policy"] as? String == "deny")

            let versions = try await client.execute(
                uri: "/api/v1/policies/\(id)/versions", method: .get, headers: headers(token: fixture.adminToken))
            let list = try #require(try json(versions)["versions"] as? [[String: Any]])
            #expect(list.map { $0["mode"] as? String } == ["audit", "enforce"])
            #expect(list.map { $0["version"] as? Int } == [1, 2])
        }
    }

    @Test func ifMatchGivesOptimisticConcurrency() async throws {
        let fixture = try await APIFixture()
        try await fixture.application().test(.router) { client in
            let created = try await client.execute(
                uri: "/api/v1/policies", method: .post, headers: headers(token: fixture.adminToken),
                body: body(policyEnvelope()))
            #expect(created.status == .created)
            let id = try #require(try json(created)["id"] as? String)
            let etag1 = try #require(created.headers[.eTag])

            let replaced = try await client.execute(
                uri: "/api/v1/policies/\(id)", method: .put,
                headers: headers(token: fixture.adminToken, [.ifMatch: etag1]),
                body: body(policyEnvelope(mode: "enforce")))
            #expect(replaced.status == .ok)

            // A second writer still holding the first ETag loses.
            let stale = try await client.execute(
                uri: "/api/v1/policies/\(id)", method: .put,
                headers: headers(token: fixture.adminToken, [.ifMatch: etag1]), body: body(policyEnvelope()))
            #expect(stale.status == .preconditionFailed)
            #expect(try json(stale)["error"] as? String != nil)
            let staleDelete = try await client.execute(
                uri: "/api/v1/policies/\(id)", method: .delete,
                headers: headers(token: fixture.adminToken, [.ifMatch: etag1]))
            #expect(staleDelete.status == .preconditionFailed)
            let missing = try await client.execute(
                uri: "/api/v1/policies/by-name/nope", method: .put,
                headers: headers(token: fixture.adminToken, [.ifMatch: etag1]), body: body(policyEnvelope(name: nil)))
            #expect(missing.status == .preconditionFailed)

            let deleted = try await client.execute(
                uri: "/api/v1/policies/\(id)", method: .delete,
                headers: headers(token: fixture.adminToken, [.ifMatch: try #require(replaced.headers[.eTag])]))
            #expect(deleted.status == .noContent)
            let gone = try await client.execute(
                uri: "/api/v1/policies/\(id)", method: .get, headers: headers(token: fixture.adminToken))
            #expect(gone.status == .notFound)
            #expect(try json(gone)["details"] as? [Any] != nil)
        }
    }

    @Test func conflictsAndValidation() async throws {
        let fixture = try await APIFixture()
        try await fixture.application().test(.router) { client in
            let auth = headers(token: fixture.adminToken)
            let first = try await client.execute(
                uri: "/api/v1/policies", method: .post, headers: auth, body: body(policyEnvelope()))
            #expect(first.status == .created)
            let duplicate = try await client.execute(
                uri: "/api/v1/policies", method: .post, headers: auth, body: body(policyEnvelope()))
            #expect(duplicate.status == .conflict)

            let invalid = try await client.execute(
                uri: "/api/v1/policies/by-name/office-egress", method: .put, headers: auth,
                body: body(
                    #"""
                    {"mode": "enforce", "policy": {"default_policy": "maybe", "source_groups": [
                      {"id": "a", "sources": {"cidrs": ["10.0.0.0/8"]}, "rules": [
                        {"id": "r", "action": "allow", "match": {"dst_ports": [443, "90-80", 70000]}}]}]}}
                    """#))
            #expect(invalid.status == .badRequest)
            let details = try #require(try json(invalid)["details"] as? [[String: String]])
            let paths = details.compactMap { $0["path"] }
            #expect(paths.contains("policy.default_policy"))
            #expect(paths.contains("policy.source_groups[0].rules[0].match.dst_ports[1]"))
            #expect(paths.contains("policy.source_groups[0].rules[0].match.dst_ports[2]"))
            #expect(details.allSatisfy { !($0["message"] ?? "").isEmpty })

            let notJSON = try await client.execute(
                uri: "/api/v1/policies", method: .post, headers: auth, body: body("{not json"))
            #expect(notJSON.status == .badRequest)
            let missingMode = try await client.execute(
                uri: "/api/v1/policies", method: .post, headers: auth, body: body(#"{"policy": {}}"#))
            #expect(try json(missingMode)["details"].flatMap { $0 as? [[String: String]] }?.first?["path"] == "mode")

            let mismatchedName = try await client.execute(
                uri: "/api/v1/policies/by-name/other", method: .put, headers: auth, body: body(policyEnvelope()))
            #expect(mismatchedName.status == .badRequest)

            let unknown = try await client.execute(uri: "/api/v1/nothing-here", method: .get, headers: auth)
            #expect(unknown.status == .notFound)
            #expect(try json(unknown)["error"] as? String == "no such resource")
        }
    }

    @Test func onlyOnePolicyIsActive() async throws {
        let fixture = try await APIFixture()
        try await fixture.application().test(.router) { client in
            let auth = headers(token: fixture.adminToken)
            _ = try await client.execute(
                uri: "/api/v1/policies/by-name/a", method: .put, headers: auth, body: body(policyEnvelope(name: "a")))
            _ = try await client.execute(
                uri: "/api/v1/policies/by-name/b", method: .put, headers: auth,
                body: body(policyEnvelope(mode: "enforce", name: "b")))
            _ = try await client.execute(
                uri: "/api/v1/policies/by-name/c", method: .put, headers: auth,
                body: body(policyEnvelope(mode: "disabled", name: "c")))
            let list = try await client.execute(uri: "/api/v1/policies", method: .get, headers: auth)
            let policies = try #require(try json(list)["policies"] as? [[String: Any]])
            let active = policies.filter { $0["active"] as? Bool == true }.compactMap { $0["name"] as? String }
            #expect(active == ["b"])
        }
    }

    @Test func bodySizeIsLimited() async throws {
        let fixture = try await APIFixture()
        try await fixture.application().test(.router) { client in
            let huge = String(repeating: " ", count: APIServer.maxBodyBytes + 1) + policyEnvelope()
            let response = try await client.execute(
                uri: "/api/v1/policies", method: .post, headers: headers(token: fixture.adminToken), body: body(huge))
            #expect(response.status == .contentTooLarge)
            #expect(try json(response)["error"] as? String == "request body too large")
        }
    }
}

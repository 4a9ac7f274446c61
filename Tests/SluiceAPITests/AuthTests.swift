// The auth matrix: no token, a malformed or wrong token, a readonly token writing, a revoked
// token, a disabled account; the open routes; and the failed-auth rate limit (429).
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SluiceAPI
import SluiceStore
import Testing

@Suite struct AuthTests {
    @Test func matrix() async throws {
        let fixture = try await APIFixture()
        try await fixture.application().test(.router) { client in
            let uri = "/api/v1/policies/by-name/office-egress"
            let none = try await client.execute(uri: "/api/v1/policies", method: .get, headers: headers(token: nil))
            #expect(none.status == .unauthorized)
            #expect(none.headers[.wwwAuthenticate] != nil)
            #expect(try json(none)["error"] as? String != nil)

            let garbage = try await client.execute(uri: "/api/v1/policies", method: .get, headers: headers(token: "x"))
            #expect(garbage.status == .unauthorized)
            // Right id, wrong secret: the hash comparison fails.
            let forged = String(fixture.readonlyToken.dropLast(2)) + "AA"
            let wrong = try await client.execute(uri: "/api/v1/policies", method: .get, headers: headers(token: forged))
            #expect(wrong.status == .unauthorized)

            let read = try await client.execute(
                uri: "/api/v1/policies", method: .get, headers: headers(token: fixture.readonlyToken))
            #expect(read.status == .ok)
            let write = try await client.execute(
                uri: uri, method: .put, headers: headers(token: fixture.readonlyToken), body: body(policyEnvelope()))
            #expect(write.status == .forbidden)
            let settings = try await client.execute(
                uri: "/api/v1/settings/performance-mode", method: .put, headers: headers(token: fixture.readonlyToken),
                body: body(#"{"enabled": false}"#))
            #expect(settings.status == .forbidden)
            let admin = try await client.execute(
                uri: uri, method: .put, headers: headers(token: fixture.adminToken), body: body(policyEnvelope()))
            #expect(admin.status == .created)

            let revoke = try await client.execute(
                uri: "/api/v1/tokens/\(fixture.readonlyTokenID)", method: .delete,
                headers: headers(token: fixture.adminToken))
            #expect(revoke.status == .ok)
            let revoked = try await client.execute(
                uri: "/api/v1/policies", method: .get, headers: headers(token: fixture.readonlyToken))
            #expect(revoked.status == .unauthorized)

            // Open without a token: /health and /ready only.
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/ready", method: .get).status == .ok)
        }
    }

    @Test func serviceAccountsAndTokensOverTheAPI() async throws {
        let fixture = try await APIFixture()
        try await fixture.application().test(.router) { client in
            let auth = headers(token: fixture.adminToken)
            let created = try await client.execute(
                uri: "/api/v1/service-accounts", method: .post, headers: auth,
                body: body(#"{"name": "ci-pipeline", "role": "admin"}"#))
            #expect(created.status == .created)
            let accountID = try #require(try json(created)["id"] as? String)
            let duplicate = try await client.execute(
                uri: "/api/v1/service-accounts", method: .post, headers: auth,
                body: body(#"{"name": "ci-pipeline", "role": "readonly"}"#))
            #expect(duplicate.status == .conflict)
            let badRole = try await client.execute(
                uri: "/api/v1/service-accounts", method: .post, headers: auth,
                body: body(#"{"name": "x", "role": "root"}"#))
            #expect(badRole.status == .badRequest)

            let issued = try await client.execute(
                uri: "/api/v1/service-accounts/\(accountID)/tokens", method: .post, headers: auth,
                body: body(#"{"name": "deploy"}"#))
            #expect(issued.status == .created)
            let token = try #require(try json(issued)["token"] as? String)
            let listed = try await client.execute(
                uri: "/api/v1/service-accounts/\(accountID)/tokens", method: .get, headers: auth)
            let tokens = try #require(try json(listed)["tokens"] as? [[String: Any]])
            #expect(tokens.count == 1)
            #expect(tokens[0]["token"] == nil, "a listed token never shows its secret")

            let write = try await client.execute(
                uri: "/api/v1/settings/performance-mode", method: .put, headers: headers(token: token),
                body: body(#"{"enabled": true}"#))
            #expect(write.status == .ok)

            let disabled = try await client.execute(
                uri: "/api/v1/service-accounts/\(accountID)", method: .delete, headers: auth)
            #expect(disabled.status == .ok)
            let after = try await client.execute(uri: "/api/v1/stats", method: .get, headers: headers(token: token))
            #expect(after.status == .unauthorized)

            let log = try await client.execute(uri: "/api/v1/admin-log?limit=50", method: .get, headers: auth)
            let entries = try #require(try json(log)["entries"] as? [[String: Any]])
            let actions = entries.compactMap { $0["action"] as? String }
            #expect(
                actions.prefix(4) == [
                    "service_account.disable", "settings.update", "token.create", "service_account.create",
                ])
            #expect(entries[1]["actor"] as? String == "ci-pipeline")
            #expect(entries[0]["actor"] as? String == "ops-admin")
        }
    }

    @Test func failedAuthenticationIsRateLimitedPerAddress() async throws {
        let fixture = try await APIFixture(authLimiter: FailedAuthLimiter(burst: 3, refillPerSecond: 0.01))
        try await fixture.application().test(.router) { client in
            for _ in 0..<3 {
                let response = try await client.execute(
                    uri: "/api/v1/stats", method: .get, headers: headers(token: "bad"))
                #expect(response.status == .unauthorized)
            }
            let limited = try await client.execute(uri: "/api/v1/stats", method: .get, headers: headers(token: "bad"))
            #expect(limited.status == .tooManyRequests)
            #expect(limited.headers[.retryAfter] != nil)
            // The limit is on the address: while it lasts, even a good token waits.
            let good = try await client.execute(
                uri: "/api/v1/stats", method: .get, headers: headers(token: fixture.adminToken))
            #expect(good.status == .tooManyRequests)
        }
    }

    @Test func limiterRefills() {
        let limiter = FailedAuthLimiter(burst: 2, refillPerSecond: 1)
        limiter.recordFailure("a", now: 0)
        limiter.recordFailure("a", now: 0)
        #expect(limiter.retryAfter("a", now: 0) == 1)
        #expect(limiter.retryAfter("b", now: 0) == nil)
        #expect(limiter.retryAfter("a", now: 1.5) == nil)
    }
}

// The same routes over real sockets: HTTPS with a freshly generated self-signed certificate
// (`.ahc(.https)`, certificate verification off as `curl -k` does), and plain HTTP (`.live`).
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SluiceAPI
import Testing

@Suite struct LiveServerTests {
    @Test func rolloutOverHTTPS() async throws {
        let fixture = try await APIFixture()
        let tls = try TLSMaterial.loadOrCreateSelfSigned(dataDirectory: fixture.directory, hosts: ["127.0.0.1"])
        // A second start reuses the certificate kept in the data directory.
        let again = try TLSMaterial.loadOrCreateSelfSigned(dataDirectory: fixture.directory, hosts: ["127.0.0.1"])
        #expect(again.certificateChainPEM == tls.certificateChainPEM)
        let keyMode =
            try FileManager.default.attributesOfItem(
                atPath: fixture.directory.appendingPathComponent("tls/key.pem").path)[.posixPermissions] as? Int
        #expect(keyMode == 0o600)

        try await fixture.application(tls: tls).test(.ahc(.https)) { client in
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
            let put = try await client.execute(
                uri: "/api/v1/policies/by-name/office-egress", method: .put,
                headers: headers(token: fixture.adminToken),
                body: body(policyEnvelope()))
            #expect(put.status == .created)
            let ready = try await client.execute(uri: "/ready", method: .get)
            #expect(ready.status == .ok)
            let denied = try await client.execute(uri: "/api/v1/stats", method: .get)
            #expect(denied.status == .unauthorized)
        }
    }

    @Test func plainHTTPLive() async throws {
        let fixture = try await APIFixture()
        try await fixture.application().test(.live) { client in
            let forbidden = try await client.execute(
                uri: "/api/v1/policies", method: .post, headers: headers(token: fixture.readonlyToken),
                body: body(policyEnvelope()))
            #expect(forbidden.status == .forbidden)
            let created = try await client.execute(
                uri: "/api/v1/policies", method: .post, headers: headers(token: fixture.adminToken),
                body: body(policyEnvelope()))
            #expect(created.status == .created)
            let list = try await client.execute(
                uri: "/api/v1/policies", method: .get, headers: headers(token: fixture.readonlyToken))
            #expect((try json(list)["policies"] as? [Any])?.count == 1)
        }
    }
}

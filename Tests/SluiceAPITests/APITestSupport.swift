// Shared fixtures of the API tests: a store in a fresh directory with an admin and a readonly
// token, the router over it, and small helpers to send JSON and read JSON back.
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SluiceAPI
import SluiceStore
import Testing

/// A store with one admin and one readonly token, and the API's dependencies over it.
struct APIFixture {
    let directory: URL
    let store: SQLiteStore
    /// Tests swap parts (a WiretapHub to publish into, a fake dataplane) before building the app.
    var deps: APIDependencies
    let adminToken: String
    let readonlyToken: String
    let readonlyTokenID: String

    init(authLimiter: FailedAuthLimiter = FailedAuthLimiter(burst: 1000), metrics: SluiceMetrics? = nil) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-api-\(UUID().uuidString)")
        store = try SQLiteStore(directory: directory)
        // With metrics, the API writes through the instrumented store, as `sluice run` does.
        var apiStore: any ManagementStore = store
        if let metrics { apiStore = InstrumentedStore(store, metrics: metrics) }
        var deps = APIDependencies.managementOnly(store: apiStore)
        if let metrics { deps.metrics = metrics }
        deps.authLimiter = authLimiter
        self.deps = deps
        let admin = try await store.createServiceAccount(name: "ops-admin", role: .admin, actor: "test")
        adminToken = try await APIToken.issue(in: store, accountID: admin.id, name: nil, actor: "test").text
        let reader = try await store.createServiceAccount(name: "dashboard", role: .readonly, actor: "test")
        let issued = try await APIToken.issue(in: store, accountID: reader.id, name: nil, actor: "test")
        readonlyToken = issued.text
        readonlyTokenID = issued.record.id
    }

    /// The application over plain HTTP on a free loopback port (or in-process with `.router`).
    func application(tls: TLSMaterial? = nil) throws -> some ApplicationProtocol {
        try APIServer.application(
            deps, listen: APIListenConfiguration(host: "127.0.0.1", port: 0, tls: tls),
            logger: Logger(label: "sluice-test"))
    }
}

/// Headers with a bearer token and a JSON content type.
func headers(token: String?, _ extra: HTTPFields = [:]) -> HTTPFields {
    var fields = extra
    if let token { fields[.authorization] = "Bearer \(token)" }
    fields[.contentType] = "application/json"
    return fields
}

/// The body of a test response as a JSON object.
func json(_ response: TestResponse) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))
    return try #require(object as? [String: Any], "response is not a JSON object: \(String(buffer: response.body))")
}

/// A JSON request body.
func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

/// The spec's example policy in a request envelope (002_eb952a1ed75b84b3.txt).
func policyEnvelope(mode: String = "audit", name: String? = "office-egress", cidr: String = "10.10.0.0/16") -> String {
    let nameField = name.map { #""name": "\#($0)","# } ?? ""
    return #"""
        {"mode": "\#(mode)", \#(nameField) "policy": {"default_policy": "deny", "source_groups": [
          {"id": "branch-office", "sources": {"cidrs": ["\#(cidr)"]}, "rules": [
            {"id": "allow-dns", "priority": 10, "action": "allow", "mode": "enforce",
             "match": {"proto": "udp", "dst_ports": [53]}}]}]}}
        """#
}

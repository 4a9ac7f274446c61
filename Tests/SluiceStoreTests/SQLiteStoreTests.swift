// SQLiteStore: policy CRUD, versions, the single-active invariant, optimistic concurrency,
// accounts and tokens, settings, admin log, findings aggregation, and reopen-after-close.
import Foundation
import Testing

@testable import SluiceStore

/// A fresh data directory under the temporary directory, removed by the caller.
func temporaryDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-store-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct SQLiteStoreTests {
    let directory = temporaryDirectory()

    func body(_ marker: String) -> String { #"{"default_policy":"deny","marker":"\#(marker)"}"# }

    @Test func createReadUpdateDelete() async throws {
        let store = try SQLiteStore(directory: directory)
        let created = try await store.createPolicy(
            PolicyWrite(name: "office", mode: .audit, body: body("a")), actor: "t")
        #expect(created.version == 1)
        #expect(created.active)
        #expect(try await store.policy(id: created.id) == created)
        #expect(try await store.policy(named: "office")?.id == created.id)

        let updated = try await store.updatePolicy(
            id: created.id, PolicyWrite(name: "office", mode: .enforce, body: body("b")), expectedVersion: 1, actor: "t"
        )
        #expect(updated.version == 2)
        #expect(updated.mode == .enforce)
        #expect(try await store.versions(ofPolicy: created.id).map(\.version) == [1, 2])
        #expect(try await store.versions(ofPolicy: created.id).map(\.body) == [body("a"), body("b")])

        _ = try await store.deletePolicy(id: created.id, expectedVersion: 2, actor: "t")
        #expect(try await store.policy(id: created.id) == nil)
        #expect(try await store.policies().isEmpty)
        await #expect(throws: StoreError.notFound("policy \(created.id)")) {
            try await store.versions(ofPolicy: created.id)
        }
    }

    @Test func namesAreUnique() async throws {
        let store = try SQLiteStore(directory: directory)
        _ = try await store.createPolicy(PolicyWrite(name: "a", mode: .disabled, body: body("a")), actor: "t")
        let other = try await store.createPolicy(PolicyWrite(name: "b", mode: .disabled, body: body("b")), actor: "t")
        await #expect(throws: StoreError.nameTaken("a")) {
            try await store.createPolicy(PolicyWrite(name: "a", mode: .disabled, body: body("c")), actor: "t")
        }
        await #expect(throws: StoreError.nameTaken("a")) {
            try await store.updatePolicy(
                id: other.id, PolicyWrite(name: "a", mode: .disabled, body: body("b")), expectedVersion: nil, actor: "t"
            )
        }
        // Unnamed policies do not collide with each other.
        _ = try await store.createPolicy(PolicyWrite(name: nil, mode: .disabled, body: body("x")), actor: "t")
        _ = try await store.createPolicy(PolicyWrite(name: nil, mode: .disabled, body: body("y")), actor: "t")
        #expect(try await store.policies().count == 4)
    }

    @Test func atMostOneActive() async throws {
        let store = try SQLiteStore(directory: directory)
        let first = try await store.createPolicy(PolicyWrite(name: "a", mode: .audit, body: body("a")), actor: "t")
        let second = try await store.createPolicy(PolicyWrite(name: "b", mode: .enforce, body: body("b")), actor: "t")
        #expect(try await store.activePolicy()?.id == second.id)
        #expect(try await store.policy(id: first.id)?.active == false)
        // A disabled write keeps the record but leaves no active policy.
        _ = try await store.updatePolicy(
            id: second.id, PolicyWrite(name: "b", mode: .disabled, body: body("b")), expectedVersion: nil, actor: "t")
        #expect(try await store.activePolicy() == nil)
        let third = try await store.upsertPolicy(
            named: "c", PolicyWrite(name: nil, mode: .audit, body: body("c")), expectedVersion: nil, actor: "t")
        #expect(third.created)
        #expect(try await store.policies().filter(\.active).map(\.id) == [third.policy.id])
    }

    @Test func optimisticConcurrency() async throws {
        let store = try SQLiteStore(directory: directory)
        let created = try await store.createPolicy(PolicyWrite(name: "a", mode: .audit, body: body("a")), actor: "t")
        _ = try await store.updatePolicy(
            id: created.id, PolicyWrite(name: "a", mode: .audit, body: body("b")), expectedVersion: 1, actor: "t")
        await #expect(throws: StoreError.versionMismatch(current: 2)) {
            try await store.updatePolicy(
                id: created.id, PolicyWrite(name: "a", mode: .audit, body: body("c")), expectedVersion: 1, actor: "t")
        }
        await #expect(throws: StoreError.versionMismatch(current: 2)) {
            try await store.deletePolicy(id: created.id, expectedVersion: 1, actor: "t")
        }
        await #expect(throws: StoreError.versionMismatch(current: nil)) {
            try await store.upsertPolicy(
                named: "missing", PolicyWrite(name: nil, mode: .audit, body: body("m")), expectedVersion: 1, actor: "t")
        }
        // Many writers racing on the same expected version: exactly one wins.
        let results = await withTaskGroup(of: Bool.self) { group in
            for n in 0..<8 {
                group.addTask {
                    (try? await store.updatePolicy(
                        id: created.id, PolicyWrite(name: "a", mode: .audit, body: self.body("r\(n)")),
                        expectedVersion: 2, actor: "t")) != nil
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 1)
        #expect(try await store.policy(id: created.id)?.version == 3)
    }

    @Test func accountsAndTokens() async throws {
        let store = try SQLiteStore(directory: directory)
        let account = try await store.createServiceAccount(name: "ci", role: .admin, actor: "local:root")
        await #expect(throws: StoreError.nameTaken("ci")) {
            try await store.createServiceAccount(name: "ci", role: .readonly, actor: "t")
        }
        let token = try await store.addToken(
            id: "t1", accountID: account.id, name: "deploy", hash: [1, 2, 3], actor: "t")
        #expect(try await store.lookupToken(id: "t1")?.token == token)
        #expect(try await store.lookupToken(id: "t1")?.account.role == .admin)
        let revoked = try await store.revokeToken(id: "t1", actor: "t")
        #expect(revoked.revokedAt != nil)
        _ = try await store.addToken(id: "t2", accountID: account.id, name: nil, hash: [4], actor: "t")
        _ = try await store.disableServiceAccount(id: account.id, actor: "t")
        #expect(try await store.lookupToken(id: "t2")?.token.revokedAt != nil)
        await #expect(throws: StoreError.notFound("service account \(account.id)")) {
            try await store.addToken(id: "t3", accountID: account.id, name: nil, hash: [5], actor: "t")
        }
    }

    @Test func settingsAndAdminLog() async throws {
        let store = try SQLiteStore(directory: directory)
        #expect(try await store.performanceMode() == SQLiteStore.performanceModeDefault)
        try await store.setPerformanceMode(false, actor: "alice")
        #expect(try await store.performanceMode() == false)
        let policy = try await store.createPolicy(PolicyWrite(name: "a", mode: .audit, body: body("a")), actor: "bob")
        _ = try await store.updatePolicy(
            id: policy.id, PolicyWrite(name: "a", mode: .enforce, body: body("a")), expectedVersion: nil, actor: "bob")
        let log = try await store.adminLog(limit: 10, beforeSeq: nil)
        #expect(log.map(\.action) == ["policy.update", "policy.create", "settings.update"])
        #expect(log[0].actor == "bob")
        #expect(log[0].before?["mode"] == "audit")
        #expect(log[0].after?["mode"] == "enforce")
        #expect(log[0].after?["version"] == "2")
        #expect(log[2].after == ["enabled": "false"])
        #expect(try await store.adminLog(limit: 10, beforeSeq: log[1].seq).map(\.action) == ["settings.update"])
    }

    @Test func findingsAggregateFilterAndStayBounded() async throws {
        let store = try SQLiteStore(directory: directory, maxFindings: 3)
        let t0 = Date(timeIntervalSince1970: 1_000_000)
        func finding(_ rule: String, _ at: TimeInterval, enforced: Bool = false) -> AuditFinding {
            AuditFinding(
                type: "packet_deny", policyID: "p", sourceGroup: "g", rule: rule, destination: "203.0.113.9",
                port: 443, proto: "tcp", enforced: enforced, firstSeen: t0 + at, lastSeen: t0 + at)
        }
        try await store.mergeFindings([finding("r1", 0), finding("r1", 5)])
        try await store.mergeFindings([finding("r1", 2), finding("r2", 3)])
        var rows = try await store.findings(FindingFilter())
        #expect(rows.map(\.rule) == ["r1", "r2"])
        #expect(rows[0].count == 3)
        #expect(rows[0].firstSeen == t0)
        #expect(rows[0].lastSeen == t0 + 5)
        // enforced is part of the key: the real deny sits next to the would-be deny.
        try await store.mergeFindings([finding("r1", 6, enforced: true)])
        rows = try await store.findings(FindingFilter(since: t0 + 4))
        #expect(rows.map(\.enforced) == [true, false])
        #expect(try await store.findings(FindingFilter(limit: 1)).count == 1)
        #expect(try await store.findings(FindingFilter(type: "dns_deny")).isEmpty)
        // Past the bound, the oldest aggregate goes.
        try await store.mergeFindings([finding("r3", 7)])
        rows = try await store.findings(FindingFilter())
        #expect(rows.count == 3)
        #expect(!rows.contains { $0.rule == "r2" })
    }

    @Test func reopenKeepsEverything() async throws {
        var policyID = ""
        do {
            let store = try SQLiteStore(directory: directory)
            policyID = try await store.createPolicy(
                PolicyWrite(name: "keep", mode: .enforce, body: body("k")), actor: "t"
            ).id
            _ = try await store.updatePolicy(
                id: policyID, PolicyWrite(name: "keep", mode: .audit, body: body("k2")), expectedVersion: 1, actor: "t")
            try await store.setPerformanceMode(false, actor: "t")
            let account = try await store.createServiceAccount(name: "ops", role: .readonly, actor: "t")
            _ = try await store.addToken(id: "tk", accountID: account.id, name: nil, hash: [9, 9], actor: "t")
            let now = Date()
            try await store.mergeFindings([
                AuditFinding(
                    type: "dns_deny", policyID: policyID, hostname: "x.example", enforced: false,
                    firstSeen: now, lastSeen: now)
            ])
        }
        let reopened = try SQLiteStore(directory: directory)
        #expect(try reopened.appliedMigrations() == ["v1"])
        #expect(try await reopened.activePolicy()?.id == policyID)
        #expect(try await reopened.policy(id: policyID)?.body == body("k2"))
        #expect(try await reopened.versions(ofPolicy: policyID).count == 2)
        #expect(try await reopened.performanceMode() == false)
        #expect(try await reopened.lookupToken(id: "tk")?.token.hash == [9, 9])
        #expect(try await reopened.findings(FindingFilter()).first?.hostname == "x.example")
        #expect(try await reopened.adminLog(limit: 100, beforeSeq: nil).count == 5)
    }
}

@Suite struct APITokenTests {
    @Test func generatedTokensParseAndMatchOnlyThemselves() {
        let (id, text) = APIToken.generate()
        #expect(APIToken.id(of: text) == id)
        #expect(text.count == APIToken.prefix.count + 16 + 1 + 43)
        let stored = APIToken.hash(text)
        #expect(APIToken.matches(text, storedHash: stored))
        #expect(!APIToken.matches(text + "x", storedHash: stored))
        #expect(!APIToken.matches(APIToken.generate().text, storedHash: stored))
        #expect(APIToken.id(of: "Bearer nonsense") == nil)
        #expect(APIToken.id(of: "sluice_123_abc") == nil)
    }
}

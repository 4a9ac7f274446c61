// A ManagementStore that times every write into `sluice_store_write_duration_seconds{op}` and
// forwards everything to the real store. A decorator rather than code in each route, so a write
// added later cannot forget its metric, and the store target stays free of Prometheus.
import Foundation
import SluiceStore

/// Times the writes of another store. Safe from any task, like the store it wraps.
public struct InstrumentedStore: ManagementStore {
    /// The store doing the work.
    public let base: any ManagementStore
    /// Where the timings go.
    public let metrics: SluiceMetrics

    public init(_ base: any ManagementStore, metrics: SluiceMetrics) {
        self.base = base
        self.metrics = metrics
    }

    func timed<T>(_ op: String, _ body: () async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        do {
            let result = try await body()
            metrics.recordStoreWrite(op: op, duration: ContinuousClock.now - start, failed: false)
            return result
        } catch {
            metrics.recordStoreWrite(op: op, duration: ContinuousClock.now - start, failed: true)
            throw error
        }
    }

    // MARK: Reads, forwarded as they are

    public func policies() async throws -> [StoredPolicy] { try await base.policies() }
    public func policy(id: String) async throws -> StoredPolicy? { try await base.policy(id: id) }
    public func policy(named name: String) async throws -> StoredPolicy? { try await base.policy(named: name) }
    public func activePolicy() async throws -> StoredPolicy? { try await base.activePolicy() }
    public func versions(ofPolicy id: String) async throws -> [PolicyVersion] { try await base.versions(ofPolicy: id) }
    public func performanceMode() async throws -> Bool { try await base.performanceMode() }
    public func serviceAccounts() async throws -> [ServiceAccount] { try await base.serviceAccounts() }
    public func serviceAccount(id: String) async throws -> ServiceAccount? { try await base.serviceAccount(id: id) }
    public func serviceAccount(named name: String) async throws -> ServiceAccount? {
        try await base.serviceAccount(named: name)
    }
    public func tokens(ofAccount accountID: String) async throws -> [TokenRecord] {
        try await base.tokens(ofAccount: accountID)
    }
    public func lookupToken(id: String) async throws -> TokenLookup? { try await base.lookupToken(id: id) }
    public func adminLog(limit: Int, beforeSeq: Int64?) async throws -> [AdminLogEntry] {
        try await base.adminLog(limit: limit, beforeSeq: beforeSeq)
    }
    public func findings(_ filter: FindingFilter) async throws -> [AuditFinding] { try await base.findings(filter) }
    public func ping() async throws { try await base.ping() }

    // MARK: Writes, timed

    public func createPolicy(_ write: PolicyWrite, actor: String) async throws -> StoredPolicy {
        try await timed("create_policy") { try await base.createPolicy(write, actor: actor) }
    }
    public func updatePolicy(id: String, _ write: PolicyWrite, expectedVersion: Int?, actor: String) async throws
        -> StoredPolicy
    {
        try await timed("update_policy") {
            try await base.updatePolicy(id: id, write, expectedVersion: expectedVersion, actor: actor)
        }
    }
    public func upsertPolicy(named name: String, _ write: PolicyWrite, expectedVersion: Int?, actor: String)
        async throws -> (policy: StoredPolicy, created: Bool)
    {
        try await timed("upsert_policy") {
            try await base.upsertPolicy(named: name, write, expectedVersion: expectedVersion, actor: actor)
        }
    }
    public func deletePolicy(id: String, expectedVersion: Int?, actor: String) async throws -> StoredPolicy {
        try await timed("delete_policy") {
            try await base.deletePolicy(id: id, expectedVersion: expectedVersion, actor: actor)
        }
    }
    public func setPerformanceMode(_ enabled: Bool, actor: String) async throws {
        try await timed("set_performance_mode") { try await base.setPerformanceMode(enabled, actor: actor) }
    }
    public func createServiceAccount(name: String, role: Role, actor: String) async throws -> ServiceAccount {
        try await timed("create_service_account") {
            try await base.createServiceAccount(name: name, role: role, actor: actor)
        }
    }
    public func disableServiceAccount(id: String, actor: String) async throws -> ServiceAccount {
        try await timed("disable_service_account") { try await base.disableServiceAccount(id: id, actor: actor) }
    }
    public func addToken(id: String, accountID: String, name: String?, hash: [UInt8], actor: String) async throws
        -> TokenRecord
    {
        try await timed("add_token") {
            try await base.addToken(id: id, accountID: accountID, name: name, hash: hash, actor: actor)
        }
    }
    public func revokeToken(id: String, actor: String) async throws -> TokenRecord {
        try await timed("revoke_token") { try await base.revokeToken(id: id, actor: actor) }
    }
    public func mergeFindings(_ findings: [AuditFinding]) async throws {
        try await timed("merge_findings") { try await base.mergeFindings(findings) }
    }
}

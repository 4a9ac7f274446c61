// The storage protocol of the management plane. The embedded implementation is SQLiteStore; a
// cluster implementation (etcd) will conform to the same protocol. Every write is atomic with the
// admin log line that describes it, and is durable when the call returns.
import Foundation

/// Durable state of a Sluice node: policies and versions, settings, service accounts and tokens,
/// the admin log and aggregated audit findings. Implementations are safe to call from any task.
public protocol ManagementStore: Sendable {
    // MARK: Policies

    /// All policies, ordered by creation time.
    func policies() async throws -> [StoredPolicy]
    /// The policy with this id, or nil.
    func policy(id: String) async throws -> StoredPolicy?
    /// The policy with this name, or nil.
    func policy(named name: String) async throws -> StoredPolicy?
    /// The active policy (mode audit or enforce, most recently made active), or nil.
    func activePolicy() async throws -> StoredPolicy?
    /// Every version of a policy, oldest first. Throws `notFound` for an unknown id.
    func versions(ofPolicy id: String) async throws -> [PolicyVersion]

    /// Creates a policy at version 1. Throws `nameTaken` when the name is used.
    func createPolicy(_ write: PolicyWrite, actor: String) async throws -> StoredPolicy
    /// Replaces a policy, adding a version. `expectedVersion` (from If-Match) must equal the current
    /// version when given. Throws `notFound`, `versionMismatch`, `nameTaken`.
    func updatePolicy(id: String, _ write: PolicyWrite, expectedVersion: Int?, actor: String) async throws
        -> StoredPolicy
    /// Creates or replaces the policy named `write.name` (which must be set). Returns the record and
    /// whether it was created. `expectedVersion` given for a missing policy throws `versionMismatch`.
    func upsertPolicy(named name: String, _ write: PolicyWrite, expectedVersion: Int?, actor: String) async throws
        -> (policy: StoredPolicy, created: Bool)
    /// Deletes a policy and its versions. Throws `notFound`, `versionMismatch`.
    func deletePolicy(id: String, expectedVersion: Int?, actor: String) async throws -> StoredPolicy

    // MARK: Settings

    /// Whether performance mode (the audit/wiretap event surfaces) is on.
    func performanceMode() async throws -> Bool
    /// Turns performance mode on or off.
    func setPerformanceMode(_ enabled: Bool, actor: String) async throws

    // MARK: Service accounts and tokens

    /// Creates a service account. Throws `nameTaken`.
    func createServiceAccount(name: String, role: Role, actor: String) async throws -> ServiceAccount
    /// All service accounts, oldest first.
    func serviceAccounts() async throws -> [ServiceAccount]
    /// The account with this id, or nil.
    func serviceAccount(id: String) async throws -> ServiceAccount?
    /// The account with this name, or nil.
    func serviceAccount(named name: String) async throws -> ServiceAccount?
    /// Disables an account and revokes all its tokens.
    func disableServiceAccount(id: String, actor: String) async throws -> ServiceAccount
    /// Stores a new token's hash for an account. Throws `notFound` for an unknown or disabled account.
    func addToken(id: String, accountID: String, name: String?, hash: [UInt8], actor: String) async throws
        -> TokenRecord
    /// Tokens of an account, oldest first.
    func tokens(ofAccount accountID: String) async throws -> [TokenRecord]
    /// The token with this id and its account, or nil.
    func lookupToken(id: String) async throws -> TokenLookup?
    /// Revokes a token. Throws `notFound`.
    func revokeToken(id: String, actor: String) async throws -> TokenRecord

    // MARK: Admin log

    /// Admin log entries, newest first, at most `limit`, optionally only those before `beforeSeq`.
    func adminLog(limit: Int, beforeSeq: Int64?) async throws -> [AdminLogEntry]

    // MARK: Findings

    /// Adds observations to the persisted aggregates (counts add up, times widen) and drops the
    /// oldest rows beyond the store's bound.
    func mergeFindings(_ findings: [AuditFinding]) async throws
    /// Findings matching the filter, newest `last_seen` first.
    func findings(_ filter: FindingFilter) async throws -> [AuditFinding]

    // MARK: Health

    /// Runs a trivial read to prove the store answers.
    func ping() async throws
}

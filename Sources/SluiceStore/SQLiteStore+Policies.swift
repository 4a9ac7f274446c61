import Foundation
import GRDB
// Policies in SQLite: the current row in `policy`, every version in `policy_version`, written
// together in one transaction with the admin log line. Making one policy active deactivates the
// previous one in the same transaction, so readers never see two (or, mid-switch, none).
import SluicePolicy

extension SQLiteStore {
    public func policies() async throws -> [StoredPolicy] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM policy ORDER BY created_at, id").map(Self.policy(from:))
        }
    }

    public func policy(id: String) async throws -> StoredPolicy? {
        try await pool.read { db in try Self.fetchPolicy(db, id: id) }
    }

    public func policy(named name: String) async throws -> StoredPolicy? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM policy WHERE name = ?", arguments: [name]).map(Self.policy(from:))
        }
    }

    public func activePolicy() async throws -> StoredPolicy? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM policy WHERE active = 1").map(Self.policy(from:))
        }
    }

    public func versions(ofPolicy id: String) async throws -> [PolicyVersion] {
        try await pool.read { db in
            guard try Self.fetchPolicy(db, id: id) != nil else { throw StoreError.notFound("policy \(id)") }
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM policy_version WHERE policy_id = ? ORDER BY version", arguments: [id])
            return rows.map { row in
                PolicyVersion(
                    policyID: row["policy_id"], version: row["version"], name: row["name"],
                    mode: PolicyMode(rawValue: row["mode"]) ?? .disabled, body: row["body"],
                    createdAt: Self.date(row["created_at"]), actor: row["actor"])
            }
        }
    }

    public func createPolicy(_ write: PolicyWrite, actor: String) async throws -> StoredPolicy {
        try await pool.write { db in try Self.insertPolicy(db, write, actor: actor) }
    }

    public func updatePolicy(id: String, _ write: PolicyWrite, expectedVersion: Int?, actor: String) async throws
        -> StoredPolicy
    {
        try await pool.write { db in
            guard let current = try Self.fetchPolicy(db, id: id) else {
                if expectedVersion != nil { throw StoreError.versionMismatch(current: nil) }
                throw StoreError.notFound("policy \(id)")
            }
            return try Self.replacePolicy(db, current, write, expectedVersion: expectedVersion, actor: actor)
        }
    }

    public func upsertPolicy(named name: String, _ write: PolicyWrite, expectedVersion: Int?, actor: String)
        async throws -> (policy: StoredPolicy, created: Bool)
    {
        try await pool.write { db in
            var write = write
            write.name = name
            let row = try Row.fetchOne(db, sql: "SELECT * FROM policy WHERE name = ?", arguments: [name])
            guard let current = row.map(Self.policy(from:)) else {
                if expectedVersion != nil { throw StoreError.versionMismatch(current: nil) }
                return (try Self.insertPolicy(db, write, actor: actor), true)
            }
            return (try Self.replacePolicy(db, current, write, expectedVersion: expectedVersion, actor: actor), false)
        }
    }

    public func deletePolicy(id: String, expectedVersion: Int?, actor: String) async throws -> StoredPolicy {
        try await pool.write { db in
            guard let current = try Self.fetchPolicy(db, id: id) else {
                if expectedVersion != nil { throw StoreError.versionMismatch(current: nil) }
                throw StoreError.notFound("policy \(id)")
            }
            if let expectedVersion, expectedVersion != current.version {
                throw StoreError.versionMismatch(current: current.version)
            }
            try db.execute(sql: "DELETE FROM policy WHERE id = ?", arguments: [id])
            try Self.log(
                db, actor: actor, action: "policy.delete", target: id, before: Self.logFields(current), after: nil,
                at: Self.now())
            return current
        }
    }

    // MARK: Inside a write transaction

    static func insertPolicy(_ db: Database, _ write: PolicyWrite, actor: String) throws -> StoredPolicy {
        try checkNameFree(db, write.name, exceptID: nil)
        let now = Self.now()
        let isActive = write.mode != .disabled
        let policy = StoredPolicy(
            id: newID(), name: write.name, mode: write.mode, active: isActive, createdAt: now, updatedAt: now,
            version: 1, body: write.body)
        if isActive { try deactivateOthers(db, exceptID: policy.id, actor: actor, at: now) }
        try db.execute(
            sql: """
                INSERT INTO policy (id, name, mode, active, created_at, updated_at, version, body)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                policy.id, policy.name, policy.mode.rawValue, policy.active, Self.micros(now),
                Self.micros(now), policy.version, policy.body,
            ])
        try insertVersion(db, policy, actor: actor)
        try log(
            db, actor: actor, action: "policy.create", target: policy.id, before: nil, after: logFields(policy), at: now
        )
        return policy
    }

    static func replacePolicy(
        _ db: Database, _ current: StoredPolicy, _ write: PolicyWrite, expectedVersion: Int?, actor: String
    ) throws -> StoredPolicy {
        if let expectedVersion, expectedVersion != current.version {
            throw StoreError.versionMismatch(current: current.version)
        }
        try checkNameFree(db, write.name, exceptID: current.id)
        let now = Self.now()
        var next = current
        next.name = write.name
        next.mode = write.mode
        next.body = write.body
        next.version = current.version + 1
        next.updatedAt = now
        next.active = write.mode != .disabled
        if next.active { try deactivateOthers(db, exceptID: current.id, actor: actor, at: now) }
        try db.execute(
            sql: "UPDATE policy SET name = ?, mode = ?, active = ?, updated_at = ?, version = ?, body = ? WHERE id = ?",
            arguments: [next.name, next.mode.rawValue, next.active, Self.micros(now), next.version, next.body, next.id])
        try insertVersion(db, next, actor: actor)
        try log(
            db, actor: actor, action: "policy.update", target: next.id, before: logFields(current),
            after: logFields(next), at: now)
        return next
    }

    static func deactivateOthers(_ db: Database, exceptID: String, actor: String, at: Date) throws {
        let rows = try Row.fetchAll(db, sql: "SELECT * FROM policy WHERE active = 1 AND id != ?", arguments: [exceptID])
        for row in rows {
            let previous = policy(from: row)
            try db.execute(sql: "UPDATE policy SET active = 0 WHERE id = ?", arguments: [previous.id])
            var after = previous
            after.active = false
            try log(
                db, actor: actor, action: "policy.deactivate", target: previous.id, before: logFields(previous),
                after: logFields(after), at: at)
        }
    }

    static func insertVersion(_ db: Database, _ policy: StoredPolicy, actor: String) throws {
        try db.execute(
            sql: """
                INSERT INTO policy_version (policy_id, version, name, mode, body, created_at, actor)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                policy.id, policy.version, policy.name, policy.mode.rawValue, policy.body,
                Self.micros(policy.updatedAt), actor,
            ])
    }

    static func checkNameFree(_ db: Database, _ name: String?, exceptID: String?) throws {
        guard let name else { return }
        let owner = try String.fetchOne(db, sql: "SELECT id FROM policy WHERE name = ?", arguments: [name])
        if let owner, owner != exceptID { throw StoreError.nameTaken(name) }
    }

    static func fetchPolicy(_ db: Database, id: String) throws -> StoredPolicy? {
        try Row.fetchOne(db, sql: "SELECT * FROM policy WHERE id = ?", arguments: [id]).map(policy(from:))
    }

    static func policy(from row: Row) -> StoredPolicy {
        StoredPolicy(
            id: row["id"], name: row["name"], mode: PolicyMode(rawValue: row["mode"]) ?? .disabled,
            active: row["active"], createdAt: Self.date(row["created_at"]), updatedAt: Self.date(row["updated_at"]),
            version: row["version"], body: row["body"])
    }

    /// The fields of a policy the admin log shows before and after a change.
    static func logFields(_ policy: StoredPolicy) -> [String: String] {
        var fields = ["mode": policy.mode.rawValue, "version": String(policy.version), "active": String(policy.active)]
        if let name = policy.name { fields["name"] = name }
        return fields
    }
}

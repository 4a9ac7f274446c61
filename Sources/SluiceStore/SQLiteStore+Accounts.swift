// Service accounts and token hashes in SQLite. Disabling an account revokes its tokens in the
// same transaction; revocation is a timestamp, never a deletion, so the admin log stays readable.
import Foundation
import GRDB

extension SQLiteStore {
    public func createServiceAccount(name: String, role: Role, actor: String) async throws -> ServiceAccount {
        try await pool.write { db in
            if try String.fetchOne(db, sql: "SELECT id FROM service_account WHERE name = ?", arguments: [name]) != nil {
                throw StoreError.nameTaken(name)
            }
            let account = ServiceAccount(
                id: Self.newID(), name: name, role: role, createdAt: Self.now(), disabledAt: nil)
            try db.execute(
                sql: "INSERT INTO service_account (id, name, role, created_at) VALUES (?, ?, ?, ?)",
                arguments: [account.id, account.name, account.role.rawValue, Self.micros(account.createdAt)])
            try Self.log(
                db, actor: actor, action: "service_account.create", target: account.id, before: nil,
                after: ["name": name, "role": role.rawValue], at: account.createdAt)
            return account
        }
    }

    public func serviceAccounts() async throws -> [ServiceAccount] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM service_account ORDER BY created_at, id").map(Self.account(from:))
        }
    }

    public func serviceAccount(id: String) async throws -> ServiceAccount? {
        try await pool.read { db in try Self.fetchAccount(db, id: id) }
    }

    public func serviceAccount(named name: String) async throws -> ServiceAccount? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM service_account WHERE name = ?", arguments: [name])
                .map(Self.account(from:))
        }
    }

    public func disableServiceAccount(id: String, actor: String) async throws -> ServiceAccount {
        try await pool.write { db in
            guard var account = try Self.fetchAccount(db, id: id) else {
                throw StoreError.notFound("service account \(id)")
            }
            if account.disabledAt != nil { return account }
            let now = Self.now()
            account.disabledAt = now
            try db.execute(
                sql: "UPDATE service_account SET disabled_at = ? WHERE id = ?", arguments: [Self.micros(now), id])
            try db.execute(
                sql: "UPDATE token SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL",
                arguments: [Self.micros(now), id])
            try Self.log(
                db, actor: actor, action: "service_account.disable", target: id, before: ["disabled": "false"],
                after: ["disabled": "true"], at: now)
            return account
        }
    }

    public func addToken(id: String, accountID: String, name: String?, hash: [UInt8], actor: String) async throws
        -> TokenRecord
    {
        try await pool.write { db in
            guard let account = try Self.fetchAccount(db, id: accountID), account.disabledAt == nil else {
                throw StoreError.notFound("service account \(accountID)")
            }
            let token = TokenRecord(
                id: id, accountID: accountID, name: name, hash: hash, createdAt: Self.now(), revokedAt: nil)
            try db.execute(
                sql: "INSERT INTO token (id, account_id, name, hash, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [token.id, accountID, name, Data(hash), Self.micros(token.createdAt)])
            var after = ["account": account.name, "role": account.role.rawValue]
            if let name { after["name"] = name }
            try Self.log(
                db, actor: actor, action: "token.create", target: id, before: nil, after: after, at: token.createdAt)
            return token
        }
    }

    public func tokens(ofAccount accountID: String) async throws -> [TokenRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM token WHERE account_id = ? ORDER BY created_at, id", arguments: [accountID]
            ).map(Self.token(from:))
        }
    }

    public func lookupToken(id: String) async throws -> TokenLookup? {
        try await pool.read { db in
            guard
                let token = try Row.fetchOne(db, sql: "SELECT * FROM token WHERE id = ?", arguments: [id])
                    .map(Self.token(from:)),
                let account = try Self.fetchAccount(db, id: token.accountID)
            else { return nil }
            return TokenLookup(token: token, account: account)
        }
    }

    public func revokeToken(id: String, actor: String) async throws -> TokenRecord {
        try await pool.write { db in
            guard
                var token = try Row.fetchOne(db, sql: "SELECT * FROM token WHERE id = ?", arguments: [id])
                    .map(Self.token(from:))
            else { throw StoreError.notFound("token \(id)") }
            if token.revokedAt != nil { return token }
            let now = Self.now()
            token.revokedAt = now
            try db.execute(sql: "UPDATE token SET revoked_at = ? WHERE id = ?", arguments: [Self.micros(now), id])
            try Self.log(
                db, actor: actor, action: "token.revoke", target: id, before: ["revoked": "false"],
                after: ["revoked": "true"], at: now)
            return token
        }
    }

    static func fetchAccount(_ db: Database, id: String) throws -> ServiceAccount? {
        try Row.fetchOne(db, sql: "SELECT * FROM service_account WHERE id = ?", arguments: [id]).map(account(from:))
    }

    static func account(from row: Row) -> ServiceAccount {
        ServiceAccount(
            id: row["id"], name: row["name"], role: Role(rawValue: row["role"]) ?? .readonly,
            createdAt: Self.date(row["created_at"]), disabledAt: Self.optionalDate(row["disabled_at"]))
    }

    static func token(from row: Row) -> TokenRecord {
        let hash: Data = row["hash"]
        return TokenRecord(
            id: row["id"], accountID: row["account_id"], name: row["name"], hash: Array(hash),
            createdAt: Self.date(row["created_at"]), revokedAt: Self.optionalDate(row["revoked_at"]))
    }
}

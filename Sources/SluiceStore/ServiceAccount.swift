// Service accounts and their API tokens. A token is shown once at creation; the store keeps only
// its SHA-256, so a copy of the database does not hand out working credentials.
import Foundation

/// What a service account may do: `readonly` reads, `admin` also writes.
public enum Role: String, Codable, Sendable, CaseIterable {
    case readonly
    case admin
}

/// A named principal that owns tokens; its role applies to all of them.
public struct ServiceAccount: Sendable, Equatable {
    /// Stable identifier (lowercase UUID).
    public var id: String
    /// Unique name, shown as the actor in the admin log.
    public var name: String
    /// The role of every token of this account.
    public var role: Role
    /// When the account was created.
    public var createdAt: Date
    /// When the account was disabled (its tokens stop working); nil while enabled.
    public var disabledAt: Date?

    public init(id: String, name: String, role: Role, createdAt: Date, disabledAt: Date?) {
        self.id = id
        self.name = name
        self.role = role
        self.createdAt = createdAt
        self.disabledAt = disabledAt
    }
}

/// A token's stored metadata. The secret itself is never stored, only `hash`.
public struct TokenRecord: Sendable, Equatable {
    /// Token identifier, also embedded in the token text so lookups need no hash index.
    public var id: String
    /// The account that owns the token.
    public var accountID: String
    /// Optional label.
    public var name: String?
    /// SHA-256 of the whole token text.
    public var hash: [UInt8]
    /// When the token was created.
    public var createdAt: Date
    /// When the token was revoked; nil while valid.
    public var revokedAt: Date?

    public init(id: String, accountID: String, name: String?, hash: [UInt8], createdAt: Date, revokedAt: Date?) {
        self.id = id
        self.accountID = accountID
        self.name = name
        self.hash = hash
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

/// The result of looking up a presented token's id: the token and its account, for the caller to
/// compare hashes (in constant time) and check revocation.
public struct TokenLookup: Sendable, Equatable {
    /// The token row.
    public var token: TokenRecord
    /// Its owning account.
    public var account: ServiceAccount

    public init(token: TokenRecord, account: ServiceAccount) {
        self.token = token
        self.account = account
    }
}

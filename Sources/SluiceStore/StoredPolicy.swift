import Foundation
// The policy records the store keeps: the current state of each policy and its version history.
// The policy body is canonical JSON text (sorted keys), so the store never depends on the schema
// version of SluicePolicy and a read returns exactly what was validated and written.
import SluicePolicy

/// One stored policy as it is now. `version` starts at 1 and grows by one on every write.
public struct StoredPolicy: Sendable, Equatable {
    /// Stable identifier (a lowercase UUID), assigned at creation.
    public var id: String
    /// Optional unique name, the key of `/policies/by-name/:name`.
    public var name: String?
    /// The mode written with this version.
    public var mode: PolicyMode
    /// Whether this is the one active policy (at most one record has it).
    public var active: Bool
    /// When the policy was created.
    public var createdAt: Date
    /// When the policy was last written.
    public var updatedAt: Date
    /// The current version number.
    public var version: Int
    /// Canonical JSON text of the `policy` object.
    public var body: String

    public init(
        id: String, name: String?, mode: PolicyMode, active: Bool, createdAt: Date, updatedAt: Date,
        version: Int, body: String
    ) {
        self.id = id
        self.name = name
        self.mode = mode
        self.active = active
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.version = version
        self.body = body
    }
}

/// One historical version of a policy, immutable once written.
public struct PolicyVersion: Sendable, Equatable {
    /// The policy this version belongs to.
    public var policyID: String
    /// The version number (1, 2, ...).
    public var version: Int
    /// The name at this version.
    public var name: String?
    /// The mode at this version.
    public var mode: PolicyMode
    /// Canonical JSON text of the policy object at this version.
    public var body: String
    /// When the version was written.
    public var createdAt: Date
    /// Who wrote it (service account name, or `local:<user>` for the CLI on the node).
    public var actor: String

    public init(
        policyID: String, version: Int, name: String?, mode: PolicyMode, body: String, createdAt: Date,
        actor: String
    ) {
        self.policyID = policyID
        self.version = version
        self.name = name
        self.mode = mode
        self.body = body
        self.createdAt = createdAt
        self.actor = actor
    }
}

/// What a caller wants a policy to become; the store assigns id, version and times.
public struct PolicyWrite: Sendable, Equatable {
    /// Name to store (nil: unnamed).
    public var name: String?
    /// Mode to store; `audit` and `enforce` make the policy the active one.
    public var mode: PolicyMode
    /// Canonical JSON text of the validated policy object.
    public var body: String

    public init(name: String?, mode: PolicyMode, body: String) {
        self.name = name
        self.mode = mode
        self.body = body
    }
}

// One line of the admin audit log: who changed what, when, and the state before and after.
// Written in the same transaction as the change it describes, so the log cannot miss a write.
import Foundation

/// A recorded administrative change.
public struct AdminLogEntry: Sendable, Equatable {
    /// Monotonic sequence number (newest is highest).
    public var seq: Int64
    /// When the change was committed.
    public var at: Date
    /// Who made it: the service account name, or `local:<user>` for CLI commands on the node.
    public var actor: String
    /// What was done, e.g. `policy.create`, `policy.update`, `policy.delete`, `settings.update`,
    /// `service_account.create`, `token.create`, `token.revoke`.
    public var action: String
    /// The object changed (policy id, setting key, account or token id).
    public var target: String
    /// Selected fields before the change (nil for a creation).
    public var before: [String: String]?
    /// Selected fields after the change (nil for a deletion).
    public var after: [String: String]?

    public init(
        seq: Int64, at: Date, actor: String, action: String, target: String, before: [String: String]?,
        after: [String: String]?
    ) {
        self.seq = seq
        self.at = at
        self.actor = actor
        self.action = action
        self.target = target
        self.before = before
        self.after = after
    }
}

// The errors every Store implementation reports, so that the API maps them to HTTP statuses
// (404, 409, 412) without knowing which backend produced them.

/// Why a store operation did not happen. Nothing was written when one of these is thrown.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The record (policy, service account, token) does not exist.
    case notFound(String)
    /// Another record already has this unique name.
    case nameTaken(String)
    /// The caller's expected version (If-Match) is not the current one; `current` is nil when the
    /// record does not exist at all.
    case versionMismatch(current: Int?)
    /// The request contradicts the stored state in a way a retry will not fix.
    case conflict(String)

    public var description: String {
        switch self {
        case .notFound(let what): return "\(what) not found"
        case .nameTaken(let name): return "the name '\(name)' is already used by another record"
        case .versionMismatch(let current):
            if let current { return "version mismatch: the current version is \(current)" }
            return "version mismatch: the record does not exist"
        case .conflict(let message): return message
        }
    }
}

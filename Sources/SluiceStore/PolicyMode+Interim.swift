// Interim copy of the policy mode until SluicePolicy's schema lands on main; removed at the merge
// so that the store and the API use SluicePolicy.PolicyMode directly.

/// The top-level mode of a stored policy (raw values as in the configuration schema).
public enum PolicyMode: String, Codable, Sendable, CaseIterable {
    case disabled
    case audit
    case enforce
}

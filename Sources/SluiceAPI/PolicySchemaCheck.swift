// Interim structural check of the policy object until SluicePolicy's validator is merged: the
// top-level fields of PolicyConfig and their JSON types. Replaced by the schema's own validation.
import Foundation

/// Checks the policy object's top-level shape and reports problems with their paths.
enum PolicySchemaCheck {
    static func issues(in policy: JSONValue) -> [APIErrorDetail] {
        guard case .object(let fields) = policy else { return [.init(path: "policy", message: "must be an object")] }
        var issues: [APIErrorDetail] = []
        for key in fields.keys.sorted() where !["default_policy", "source_groups"].contains(key) {
            issues.append(.init(path: "policy.\(key)", message: "unknown field"))
        }
        switch fields["default_policy"] {
        case nil, .null: break
        case .string(let text) where ["allow", "deny"].contains(text.lowercased()): break
        default: issues.append(.init(path: "policy.default_policy", message: "must be allow or deny"))
        }
        switch fields["source_groups"] {
        case nil, .null: break
        case .array(let groups):
            for (index, group) in groups.enumerated() {
                guard case .object(let groupFields) = group else {
                    issues.append(.init(path: "policy.source_groups[\(index)]", message: "must be an object"))
                    continue
                }
                if case .string(let id)? = groupFields["id"], !id.isEmpty {
                } else {
                    issues.append(
                        .init(path: "policy.source_groups[\(index)].id", message: "required non-empty string"))
                }
                if groupFields["sources"] == nil {
                    issues.append(.init(path: "policy.source_groups[\(index)].sources", message: "required"))
                }
            }
        default: issues.append(.init(path: "policy.source_groups", message: "must be an array"))
        }
        return issues
    }
}

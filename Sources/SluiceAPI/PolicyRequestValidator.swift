// Reads the policy request envelope `{mode, name, policy}` of 002_eb952a1ed75b84b3.txt and turns it
// into what the store keeps: the mode, the name and the canonical JSON text of the policy object.
// Every problem is reported with its JSON path, all at once, so one 400 tells the whole story.
import Foundation
import SluiceStore

/// Validation of policy write requests. Stateless; callable from any task.
enum PolicyRequestValidator {
    /// Names appear in URLs (`/policies/by-name/:name`), so they are kept to URL-safe characters.
    static let maxNameLength = 128

    /// The validated write, or an APIError(400) listing every problem.
    static func validate(_ bytes: some Collection<UInt8>) throws -> PolicyWrite {
        let document: JSONValue
        do {
            document = try JSONValue.parse(bytes)
        } catch {
            throw APIError(
                .badRequest, "the request body is not valid JSON", details: [.init(path: "", message: "\(error)")])
        }
        guard case .object(let fields) = document else {
            throw APIError(
                .badRequest, "invalid policy request",
                details: [.init(path: "", message: "expected an object with mode, name and policy")])
        }
        var issues: [APIErrorDetail] = []
        for key in fields.keys.sorted() where !["mode", "name", "policy"].contains(key) {
            issues.append(.init(path: key, message: "unknown field (expected mode, name, policy)"))
        }
        var mode = PolicyMode.disabled
        switch fields["mode"] {
        case .string(let text):
            if let parsed = PolicyMode(rawValue: text) {
                mode = parsed
            } else {
                issues.append(.init(path: "mode", message: "must be one of disabled, audit, enforce (got '\(text)')"))
            }
        case nil: issues.append(.init(path: "mode", message: "required: disabled, audit or enforce"))
        default: issues.append(.init(path: "mode", message: "must be a string: disabled, audit or enforce"))
        }
        var name: String?
        switch fields["name"] {
        case .string(let text):
            if let problem = nameProblem(text) { issues.append(.init(path: "name", message: problem)) }
            name = text
        case nil, .null: break
        default: issues.append(.init(path: "name", message: "must be a string"))
        }
        var policy = JSONValue.object([:])
        switch fields["policy"] {
        case .object(let object):
            policy = .object(object)
            issues.append(contentsOf: PolicySchemaCheck.issues(in: policy))
        case nil: issues.append(.init(path: "policy", message: "required: the policy object"))
        default: issues.append(.init(path: "policy", message: "must be an object"))
        }
        if !issues.isEmpty {
            throw APIError(.badRequest, "invalid policy request: \(issues.count) problem(s)", details: issues)
        }
        return PolicyWrite(name: name, mode: mode, body: policy.canonicalText)
    }

    /// Why `name` is not an acceptable policy name, or nil when it is.
    static func nameProblem(_ name: String) -> String? {
        if name.isEmpty || name.count > maxNameLength { return "must be 1 to \(maxNameLength) characters" }
        let allowed = name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII
                && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                    || "._-".unicodeScalars.contains(scalar))
        }
        return allowed ? nil : "may contain only letters, digits, '.', '_' and '-'"
    }
}

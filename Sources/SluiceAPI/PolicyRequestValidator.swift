// Reads the policy request envelope `{mode, name, policy}` of 002_eb952a1ed75b84b3.txt with
// SluicePolicy's parser, which reports every problem with its JSON path at once, and turns it into
// what the store keeps: mode, name and the canonical JSON text of the policy object.
import Foundation
import SluicePolicy
import SluiceStore

/// A validated policy write and the parser's warnings (accepted but worth telling the operator).
struct ValidatedPolicyWrite {
    var write: PolicyWrite
    var warnings: [ValidationIssue]
    /// The parsed policy of `write.body`, handed to the deployer so that it need not parse the
    /// stored text again.
    var config: PolicyConfig
}

/// Validation of policy write requests. Stateless; callable from any task.
enum PolicyRequestValidator {
    /// Names appear in URLs (`/policies/by-name/:name`), so they are kept to URL-safe characters.
    static let maxNameLength = 128

    /// The validated write, or an APIError(400) listing every problem with its path.
    static func validate(_ bytes: some Collection<UInt8>) throws -> ValidatedPolicyWrite {
        let document: JSONValue
        do {
            document = try JSONValue.parse(bytes)
        } catch {
            throw APIError(
                .badRequest, "the request body is not valid JSON",
                details: [.init(path: "", message: error.description)])
        }
        let parsed: ParsedPolicy<PolicyRequest>
        do {
            parsed = try PolicyParser.parseRequest(document)
        } catch {
            throw APIError(
                .badRequest, "invalid policy: \(error.issues.count) problem(s)",
                details: error.issues.map { APIErrorDetail(path: requestPath($0.path), message: $0.message) })
        }
        if let name = parsed.value.name, let problem = nameProblem(name) {
            throw APIError(.badRequest, "invalid policy name", details: [.init(path: "name", message: problem)])
        }
        let body = document.member("policy") ?? .object([])
        return ValidatedPolicyWrite(
            write: PolicyWrite(name: parsed.value.name, mode: parsed.value.mode, body: body.canonicalText),
            warnings: parsed.warnings.map { ValidationIssue(path: requestPath($0.path), message: $0.message) },
            config: parsed.value.policy)
    }

    /// The parser reports paths inside the policy object relative to it (`source_groups[0]...`);
    /// the API reports them from the request body's root (`policy.source_groups[0]...`), which is
    /// what an operator looking at the document they sent needs.
    static func requestPath(_ path: String) -> String {
        if ["", "mode", "name", "policy"].contains(path) || path.hasPrefix("policy.") { return path }
        return "policy." + path
    }

    /// Why `name` is not an acceptable policy or account name, or nil when it is.
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

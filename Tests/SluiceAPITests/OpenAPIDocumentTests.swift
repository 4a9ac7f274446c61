// Keeps the OpenAPI document true: every route registered on the router is documented (method
// and path), every documented path exists, and the responses of the main routes validate against
// their documented schemas with a small JSON Schema subset validator (type, properties,
// required, additionalProperties, items, enum, oneOf, anyOf, $ref, minimum, maximum, pattern).
import Foundation
import Hummingbird
import HummingbirdTesting
import SluiceAPI
import SluicePolicy
import SluiceStore
import Testing

/// The subset of JSON Schema 2020-12 the document uses.
struct SchemaValidator {
    let document: JSONValue

    func member(_ value: JSONValue?, _ key: String) -> JSONValue? {
        guard case .object(let members)? = value else { return nil }
        return members.first { $0.key == key }?.value
    }

    func resolve(_ reference: String) -> JSONValue? {
        var node: JSONValue? = document
        for part in reference.dropFirst(2).split(separator: "/") { node = member(node, String(part)) }
        return node
    }

    func typeMatches(_ value: JSONValue, _ type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null),
            ("integer", .int), ("number", .int), ("number", .double):
            return true
        default:
            return false
        }
    }

    /// Every violation, with its location in the instance.
    func validate(_ value: JSONValue, _ schema: JSONValue, at path: String = "$") -> [String] {
        if case .string(let reference)? = member(schema, "$ref") {
            guard let target = resolve(reference) else { return ["\(path): unresolvable \(reference)"] }
            return validate(value, target, at: path)
        }
        var problems: [String] = []
        switch member(schema, "type") {
        case .string(let type)?:
            if !typeMatches(value, type) { return ["\(path): expected \(type), got \(value.typeName)"] }
        case .array(let types)?:
            let names = types.compactMap { type -> String? in
                if case .string(let name) = type { return name }
                return nil
            }
            if !names.contains(where: { typeMatches(value, $0) }) {
                return ["\(path): expected one of \(types), got \(value.typeName)"]
            }
        default: break
        }
        if case .array(let allowed)? = member(schema, "enum"), !allowed.contains(value) {
            problems.append("\(path): \(value) is not one of \(allowed)")
        }
        if case .int(let number) = value {
            if case .int(let minimum)? = member(schema, "minimum"), number < minimum {
                problems.append("\(path): below the minimum")
            }
            if case .int(let maximum)? = member(schema, "maximum"), number > maximum {
                problems.append("\(path): above the maximum")
            }
        }
        if case .string(let text) = value, case .string(let pattern)? = member(schema, "pattern"),
            text.range(of: pattern, options: .regularExpression) == nil
        {
            problems.append("\(path): '\(text)' does not match \(pattern)")
        }
        if case .object(let members) = value {
            let properties = member(schema, "properties")
            if case .array(let required)? = member(schema, "required") {
                for case .string(let name) in required where !members.contains(where: { $0.key == name }) {
                    problems.append("\(path): missing required \(name)")
                }
            }
            for (key, child) in members {
                if let propertySchema = member(properties, key) {
                    problems += validate(child, propertySchema, at: "\(path).\(key)")
                } else if let additional = member(schema, "additionalProperties") {
                    if additional == .bool(false) {
                        problems.append("\(path): undocumented property \(key)")
                    } else if case .object = additional {
                        problems += validate(child, additional, at: "\(path).\(key)")
                    }
                }
            }
        }
        if case .array(let items) = value, let itemSchema = member(schema, "items") {
            for (index, item) in items.enumerated() { problems += validate(item, itemSchema, at: "\(path)[\(index)]") }
        }
        if case .array(let choices)? = member(schema, "oneOf") {
            let passing = choices.filter { validate(value, $0, at: path).isEmpty }.count
            if passing != 1 { problems.append("\(path): matches \(passing) of the oneOf alternatives, not exactly 1") }
        }
        if case .array(let choices)? = member(schema, "anyOf"),
            !choices.contains(where: { validate(value, $0).isEmpty })
        {
            problems.append("\(path): matches none of the anyOf alternatives")
        }
        return problems
    }

    /// The schema of a documented response.
    func responseSchema(_ path: String, _ method: String, _ status: Int) -> JSONValue? {
        let operation = member(member(member(document, "paths"), path), method)
        let response = member(member(operation, "responses"), String(status))
        return member(member(member(response, "content"), "application/json"), "schema")
    }
}

@Suite struct OpenAPIDocumentTests {
    let document = try! JSONValue.parse(Array(OpenAPIDocument.text.utf8))
    var validator: SchemaValidator { SchemaValidator(document: document) }

    @Test func everyRegisteredRouteIsDocumentedAndNothingElse() async throws {
        let fixture = try await APIFixture()
        let router = APIServer.router(fixture.deps)
        let registered = Set(router.routes.map { "\($0.method.rawValue.lowercased()) \($0.path.description)" })
        var documented: Set<String> = []
        guard case .object(let paths)? = validator.member(document, "paths") else {
            Issue.record("no paths")
            return
        }
        for (path, item) in paths {
            guard case .object(let operations) = item else { continue }
            for (method, _) in operations { documented.insert("\(method) \(path)") }
        }
        #expect(registered.subtracting(documented).isEmpty, "undocumented: \(registered.subtracting(documented))")
        #expect(documented.subtracting(registered).isEmpty,
                "documented but absent: \(documented.subtracting(registered))")
        #expect(registered.count >= 25)
        #expect(validator.member(document, "openapi") == .string("3.1.0"))
        for name in ["OpenApiPolicyUpsertRequest", "PolicyConfig", "SourceGroupConfig", "SourcesConfig", "RuleConfig",
                     "RuleMatchConfig", "TlsMatchConfig", "TlsNameMatchConfig", "ProtoValue", "PortSpec"] {
            #expect(validator.resolve("#/components/schemas/\(name)") != nil, "\(name) missing")
        }
    }

    @Test func everyReferenceResolves() {
        func references(_ value: JSONValue) -> [String] {
            switch value {
            case .object(let members):
                return members.flatMap { key, child -> [String] in
                    if key == "$ref", case .string(let target) = child { return [target] }
                    return references(child)
                }
            case .array(let values): return values.flatMap(references)
            default: return []
            }
        }
        let all = references(document)
        #expect(all.count > 50)
        for target in all { #expect(validator.resolve(target) != nil, "\(target)") }
    }

    @Test func theSpecsExamplesValidateAgainstThePolicySchemas() throws {
        // The untagged unions of 002_eb952a1ed75b84b3.txt, each form.
        let request = try JSONValue.parse(Array(policyEnvelope().utf8))
        let requestSchema = JSONValue.object([("$ref", .string("#/components/schemas/OpenApiPolicyUpsertRequest"))])
        #expect(validator.validate(request, requestSchema) == [])
        let forms = #"""
            {"dst_ports": [443, "80-81"], "proto": 6, "tls": {"mode": "metadata", "sni": ".*\\.example\\.com",
             "server_san": ["api.example.com"], "server_cn": {"exact": ["api.example.com"], "regex": "x"}}}
            """#
        let match = try JSONValue.parse(Array(forms.utf8))
        let matchSchema = JSONValue.object([("$ref", .string("#/components/schemas/RuleMatchConfig"))])
        #expect(validator.validate(match, matchSchema) == [])
        let wrong = try JSONValue.parse(Array(#"{"dst_ports": [true], "proto": [6], "color": 1}"#.utf8))
        #expect(validator.validate(wrong, matchSchema).count == 3)
    }

    @Test func mainResponsesValidateAgainstTheirSchemas() async throws {
        let fixture = try await APIFixture()
        let validator = self.validator
        try await fixture.application().test(.router) { client in
            let admin = headers(token: fixture.adminToken)
            func check(_ method: HTTPRequest.Method, _ uri: String, documented path: String, body text: String? = nil,
                       extra: HTTPFields = [:], expect status: HTTPResponse.Status) async throws -> JSONValue {
                var fields = admin
                for field in extra { fields.append(field) }
                let response = try await client.execute(
                    uri: uri, method: method, headers: fields, body: text.map { body($0) })
                #expect(response.status == status, "\(method) \(uri): \(String(buffer: response.body))")
                let value = try JSONValue.parse(Array(response.body.readableBytesView))
                let schema = try #require(
                    validator.responseSchema(path, method.rawValue.lowercased(), Int(status.code)),
                    "\(method) \(path) \(status.code) is not documented")
                let problems = validator.validate(value, schema)
                #expect(problems.isEmpty, "\(method) \(uri): \(problems)")
                return value
            }
            _ = try await check(.get, "/health", documented: "/health", expect: .ok)
            _ = try await check(.get, "/ready", documented: "/ready", expect: .serviceUnavailable)
            let created = try await check(
                .put, "/api/v1/policies/by-name/office-egress", documented: "/api/v1/policies/by-name/{name}",
                body: policyEnvelope(), expect: .created)
            guard case .string(let id)? = validator.member(created, "id") else { Issue.record("no id"); return }
            _ = try await check(.get, "/ready", documented: "/ready", expect: .ok)
            _ = try await check(.get, "/api/v1/policies", documented: "/api/v1/policies", expect: .ok)
            _ = try await check(.get, "/api/v1/policies/\(id)", documented: "/api/v1/policies/{id}", expect: .ok)
            _ = try await check(
                .get, "/api/v1/policies/\(id)/versions", documented: "/api/v1/policies/{id}/versions", expect: .ok)
            _ = try await check(
                .post, "/api/v1/policies", documented: "/api/v1/policies", body: policyEnvelope(name: "second"),
                expect: .created)
            _ = try await check(
                .post, "/api/v1/policies", documented: "/api/v1/policies",
                body: #"{"mode": "on", "policy": {"source_groups": [{"id": 1}]}}"#, expect: .badRequest)
            _ = try await check(
                .put, "/api/v1/policies/\(id)", documented: "/api/v1/policies/{id}", body: policyEnvelope(),
                extra: [.ifMatch: "\"\(id).0\""], expect: .preconditionFailed)
            _ = try await check(.get, "/api/v1/stats", documented: "/api/v1/stats", expect: .ok)
            _ = try await check(
                .get, "/api/v1/settings/performance-mode", documented: "/api/v1/settings/performance-mode", expect: .ok)
            await fixture.deps.findings.record(
                AuditFinding(type: "packet_deny", policyID: id, sourceGroup: "branch-office",
                             destination: "203.0.113.7",
                             port: 22, proto: "tcp", enforced: false, firstSeen: Date(), lastSeen: Date()))
            _ = try await check(.get, "/api/v1/audit/findings", documented: "/api/v1/audit/findings", expect: .ok)
            _ = try await check(
                .get, "/api/v1/audit/findings?limit=0", documented: "/api/v1/audit/findings", expect: .badRequest)
            _ = try await check(.get, "/api/v1/dns-cache", documented: "/api/v1/dns-cache", expect: .ok)
            _ = try await check(.get, "/api/v1/admin-log", documented: "/api/v1/admin-log", expect: .ok)
            let accounts = try await check(
                .get, "/api/v1/service-accounts", documented: "/api/v1/service-accounts", expect: .ok)
            let first = validator.member(accounts, "service_accounts").flatMap { value -> JSONValue? in
                if case .array(let values) = value { return values.first } else { return nil }
            }
            guard case .string(let accountID)? = validator.member(first, "id") else {
                Issue.record("no account")
                return
            }
            _ = try await check(
                .post, "/api/v1/service-accounts/\(accountID)/tokens",
                documented: "/api/v1/service-accounts/{id}/tokens", body: #"{"name": "ci"}"#, expect: .created)
            _ = try await check(
                .get, "/api/v1/service-accounts/\(accountID)/tokens",
                documented: "/api/v1/service-accounts/{id}/tokens",
                expect: .ok)
            _ = try await check(.get, "/api/v1/policies/nope", documented: "/api/v1/policies/{id}", expect: .notFound)

            let open = try await client.execute(uri: "/openapi/neuwerk-v1.json", method: .get)
            #expect(open.status == .ok)
            #expect(try JSONValue.parse(Array(open.body.readableBytesView)) == document)
            let sluice = try await client.execute(uri: "/openapi/sluice-v1.json", method: .get)
            #expect(sluice.status == .ok)
        }
    }

    @Test func aFlowEventValidatesAgainstItsSchema() throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let event = try JSONValue.parse(Array(try encoder.encode(syntheticFlow(9))))
        let schema = JSONValue.object([("$ref", .string("#/components/schemas/FlowEvent"))])
        #expect(validator.validate(event, schema) == [])
    }
}

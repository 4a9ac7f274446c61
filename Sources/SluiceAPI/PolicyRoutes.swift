// Policy routes: create, list, read, replace, delete, by stable name, and version history.
// Writes are validated, stored durably (with the admin log line), then deployed; the response
// carries the record, its ETag and the deployment. If-Match gives optimistic concurrency (412).
import Foundation
import Hummingbird
import SluicePolicy
import SluiceStore

struct PolicyRoutes {
    let deps: APIDependencies

    func register(on group: RouterGroup<SluiceRequestContext>) {
        group.post("policies", use: create)
        group.get("policies", use: list)
        group.get("policies/by-name/:name", use: getByName)
        group.put("policies/by-name/:name", use: putByName)
        group.get("policies/:id", use: get)
        group.put("policies/:id", use: put)
        group.delete("policies/:id", use: delete)
        group.get("policies/:id/versions", use: versions)
    }

    @Sendable func create(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let validated = try await readWrite(request)
        let stored = try await deps.store.createPolicy(validated.write, actor: context.actor)
        return try await written(stored, validated, status: .created, request: request, context: context)
    }

    @Sendable func list(_ request: Request, context: SluiceRequestContext) async throws -> PolicyListJSON {
        PolicyListJSON(policies: try await deps.store.policies().map { PolicyJSON($0) })
    }

    @Sendable func get(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard let stored = try await deps.store.policy(id: id) else {
            throw APIError(.notFound, "policy \(id) not found")
        }
        return try respond(PolicyJSON(stored), status: .ok, etag: Self.etag(stored), context: context)
    }

    @Sendable func getByName(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        guard let stored = try await deps.store.policy(named: name) else {
            throw APIError(.notFound, "no policy named '\(name)'")
        }
        return try respond(PolicyJSON(stored), status: .ok, etag: Self.etag(stored), context: context)
    }

    @Sendable func put(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let validated = try await readWrite(request)
        let expected = try await expectedVersion(request, current: deps.store.policy(id: id))
        let stored = try await deps.store.updatePolicy(
            id: id, validated.write, expectedVersion: expected, actor: context.actor)
        return try await written(stored, validated, status: .ok, request: request, context: context)
    }

    /// `PUT /policies/by-name/:name` creates or replaces: the spec's rollout command.
    @Sendable func putByName(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        if let problem = PolicyRequestValidator.nameProblem(name) {
            throw APIError(.badRequest, "invalid policy name", details: [.init(path: "name", message: problem)])
        }
        let validated = try await readWrite(request)
        if let bodyName = validated.write.name, bodyName != name {
            throw APIError(
                .badRequest, "the body's name differs from the name in the path",
                details: [.init(path: "name", message: "is '\(bodyName)', the path says '\(name)'")])
        }
        let expected = try await expectedVersion(request, current: deps.store.policy(named: name))
        let (stored, created) = try await deps.store.upsertPolicy(
            named: name, validated.write, expectedVersion: expected, actor: context.actor)
        return try await written(
            stored, validated, status: created ? .created : .ok, request: request, context: context)
    }

    @Sendable func delete(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let expected = try await expectedVersion(request, current: deps.store.policy(id: id))
        _ = try await deps.store.deletePolicy(id: id, expectedVersion: expected, actor: context.actor)
        _ = await deps.deployer.reconcile()
        return Response(status: .noContent)
    }

    @Sendable func versions(_ request: Request, context: SluiceRequestContext) async throws -> PolicyVersionListJSON {
        let id = try context.parameters.require("id")
        return PolicyVersionListJSON(
            versions: try await deps.store.versions(ofPolicy: id).map { try PolicyVersionJSON($0) })
    }

    // MARK: Helpers

    func readWrite(_ request: Request) async throws -> ValidatedPolicyWrite {
        var request = request
        let body = try await request.collectBody(upTo: APIServer.maxBodyBytes)
        return try PolicyRequestValidator.validate(body.readableBytesView)
    }

    /// Deploys after a write and answers with the record, its ETag and the deployment state.
    func written(
        _ stored: StoredPolicy, _ validated: ValidatedPolicyWrite, status: HTTPResponse.Status, request: Request,
        context: SluiceRequestContext
    ) async throws -> Response {
        let deployment = await deps.deployer.reconcile(parsed: (validated.write.body, validated.config))
        var response = try respond(
            PolicyJSON(stored, deployment: deployment, warnings: validated.warnings), status: status,
            etag: Self.etag(stored), context: context)
        if status == .created { response.headers[.location] = "/api/v1/policies/\(stored.id)" }
        return response
    }

    func respond(
        _ body: PolicyJSON, status: HTTPResponse.Status, etag: String, context: SluiceRequestContext
    ) throws -> Response {
        let bytes = try body.responseBody(encoder: context.responseEncoder)
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .contentLength: String(bytes.count), .eTag: etag],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// A strong ETag naming both the policy and its version, so an ETag of a deleted and recreated
    /// policy of the same name never matches the new one.
    static func etag(_ policy: StoredPolicy) -> String { "\"\(policy.id).\(policy.version)\"" }

    /// The version an If-Match header requires (nil: no header), checked again by the store inside
    /// the write transaction. A tag of another policy can never match: it maps to version -1.
    func expectedVersion(_ request: Request, current: StoredPolicy?) throws -> Int? {
        guard let header = request.headers[.ifMatch] else { return nil }
        guard let current else {
            throw APIError(
                .preconditionFailed, "If-Match given but the policy does not exist",
                details: [.init(path: "If-Match", message: "no current representation to match")])
        }
        for tag in header.split(separator: ",") {
            var text = tag.trimmingCharacters(in: .whitespaces)
            if text == "*" { return current.version }
            if text.hasPrefix("W/") { text.removeFirst(2) }
            if text == Self.etag(current) { return current.version }
        }
        return -1
    }
}

// Service accounts and their tokens over the API (the first admin token comes from
// `sluice token create` on the node). A token's text appears once, in the creation response.
import Foundation
import Hummingbird
import SluiceStore

struct AccountRoutes {
    let deps: APIDependencies

    func register(on group: RouterGroup<SluiceRequestContext>) {
        group.get("service-accounts", use: listAccounts)
        group.post("service-accounts", use: createAccount)
        group.get("service-accounts/:id", use: getAccount)
        group.delete("service-accounts/:id", use: disableAccount)
        group.get("service-accounts/:id/tokens", use: listTokens)
        group.post("service-accounts/:id/tokens", use: createToken)
        group.delete("tokens/:id", use: revokeToken)
    }

    @Sendable func listAccounts(_ request: Request, context: SluiceRequestContext) async throws
        -> ServiceAccountListJSON
    {
        ServiceAccountListJSON(serviceAccounts: try await deps.store.serviceAccounts().map(ServiceAccountJSON.init))
    }

    @Sendable func createAccount(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let body = try await request.decode(as: CreateServiceAccountJSON.self, context: context)
        if let problem = PolicyRequestValidator.nameProblem(body.name) {
            throw APIError(.badRequest, "invalid service account", details: [.init(path: "name", message: problem)])
        }
        let account = try await deps.store.createServiceAccount(name: body.name, role: body.role, actor: context.actor)
        var response = try ServiceAccountJSON(account).response(from: request, context: context)
        response.status = .created
        response.headers[.location] = "/api/v1/service-accounts/\(account.id)"
        return response
    }

    @Sendable func getAccount(_ request: Request, context: SluiceRequestContext) async throws -> ServiceAccountJSON {
        let id = try context.parameters.require("id")
        guard let account = try await deps.store.serviceAccount(id: id) else {
            throw APIError(.notFound, "service account \(id) not found")
        }
        return ServiceAccountJSON(account)
    }

    @Sendable func disableAccount(_ request: Request, context: SluiceRequestContext) async throws -> ServiceAccountJSON
    {
        let id = try context.parameters.require("id")
        if id == context.principal?.accountID {
            throw APIError(.conflict, "an account cannot disable itself; use another admin account")
        }
        return ServiceAccountJSON(try await deps.store.disableServiceAccount(id: id, actor: context.actor))
    }

    @Sendable func listTokens(_ request: Request, context: SluiceRequestContext) async throws -> TokenListJSON {
        let id = try context.parameters.require("id")
        guard try await deps.store.serviceAccount(id: id) != nil else {
            throw APIError(.notFound, "service account \(id) not found")
        }
        return TokenListJSON(tokens: try await deps.store.tokens(ofAccount: id).map { TokenJSON($0) })
    }

    @Sendable func createToken(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        var request = request
        let bytes = try await request.collectBody(upTo: 64 * 1024)
        let body =
            bytes.readableBytes == 0
            ? CreateTokenJSON(name: nil)
            : try JSONDecoder().decode(CreateTokenJSON.self, from: Data(bytes.readableBytesView))
        let (record, text) = try await APIToken.issue(
            in: deps.store, accountID: id, name: body.name, actor: context.actor)
        var response = try TokenJSON(record, text: text).response(from: request, context: context)
        response.status = .created
        response.headers[.cacheControl] = "no-store"
        return response
    }

    @Sendable func revokeToken(_ request: Request, context: SluiceRequestContext) async throws -> TokenJSON {
        let id = try context.parameters.require("id")
        return TokenJSON(try await deps.store.revokeToken(id: id, actor: context.actor))
    }
}

// Bearer authentication for `/api/v1`: any valid token may read (GET/HEAD), only an admin token
// may write. The token's id selects its row; the SHA-256 of the presented text is compared with
// the stored hash in constant time. Failures count against the client's address (429 past it).
import Foundation
import Hummingbird
import SluiceStore

/// Authenticates every request below it and enforces the role for writes.
struct TokenAuthMiddleware: RouterMiddleware {
    typealias Context = SluiceRequestContext

    let store: any ManagementStore
    let limiter: FailedAuthLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if let seconds = limiter.retryAfter(context.clientKey) {
            throw APIError(
                .tooManyRequests, "too many failed authentications from this address; retry in \(seconds) s",
                headers: [.retryAfter: String(seconds)])
        }
        guard let principal = try await authenticate(request) else {
            limiter.recordFailure(context.clientKey)
            throw APIError(
                .unauthorized, "a valid bearer token is required (Authorization: Bearer <token>)",
                headers: [.wwwAuthenticate: #"Bearer realm="sluice""#])
        }
        if !(request.method == .get || request.method == .head), principal.role != .admin {
            throw APIError(.forbidden, "the token's role '\(principal.role.rawValue)' may only read; writes need admin")
        }
        var context = context
        context.principal = principal
        return try await next(request, context)
    }

    /// The principal of a valid, unrevoked token of an enabled account, or nil.
    func authenticate(_ request: Request) async throws -> Principal? {
        guard let header = request.headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let text = parts[1].trimmingCharacters(in: .whitespaces)
        guard let id = APIToken.id(of: text), let found = try await store.lookupToken(id: id) else { return nil }
        guard APIToken.matches(text, storedHash: found.token.hash), found.token.revokedAt == nil,
            found.account.disabledAt == nil
        else { return nil }
        return Principal(accountID: found.account.id, name: found.account.name, role: found.account.role)
    }
}

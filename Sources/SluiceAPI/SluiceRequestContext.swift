// The per-request context: the client address (for the failed-auth rate limit) and, once the
// bearer token checked out, the service account that made the request (the admin log's actor).
import Foundation
import Hummingbird
import NIOCore
import SluiceStore

/// Who is calling, as established by TokenAuthMiddleware.
public struct Principal: Sendable, Equatable {
    /// The service account id.
    public var accountID: String
    /// The service account name, recorded as the actor of writes.
    public var name: String
    /// What the account may do.
    public var role: Role
}

/// Request context of every Sluice route. Lives for one request, on that request's task.
public struct SluiceRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's address as seen on the socket, nil in in-process tests.
    public let remoteAddress: SocketAddress?
    /// The authenticated caller, set by TokenAuthMiddleware on `/api/v1` routes.
    public var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.principal = nil
    }

    /// The body size limit for decoded requests: a policy of thousands of rules fits in 4 MiB.
    public var maxUploadSize: Int { APIServer.maxBodyBytes }

    /// Responses print keys sorted and slashes unescaped, so equal documents are equal text.
    public var responseEncoder: JSONEncoder { Self.makeResponseEncoder() }

    /// A new encoder with the response settings.
    static func makeResponseEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// The actor recorded in the admin log for writes made in this request.
    var actor: String { principal?.name ?? "anonymous" }

    /// The client address without the port, the key of the failed-auth rate limit.
    var clientKey: String { remoteAddress?.ipAddress ?? "local" }
}

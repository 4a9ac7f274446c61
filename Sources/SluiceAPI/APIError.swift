// The error model of the API: every failure is `{"error": "...", "details": [{"path", "message"}]}`
// with the status that says what went wrong. Handlers throw APIError (or Hummingbird's HTTPError,
// or a StoreError); APIErrorMiddleware turns whatever was thrown into this shape.
import Foundation
import Hummingbird
import SluiceStore

/// One precise problem with the request, e.g. a validation failure at a JSON path.
public struct APIErrorDetail: Codable, Sendable, Equatable {
    /// Where in the request the problem is (`policy.source_groups[1].rules[0].action`, `If-Match`).
    public var path: String
    /// What is wrong there.
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
}

/// The JSON body of every error response.
public struct APIErrorBody: Codable, Sendable, Equatable {
    /// A one-line summary.
    public var error: String
    /// Every individual problem; empty when the summary says it all.
    public var details: [APIErrorDetail]
}

/// An error that is the response: throw it from a handler.
public struct APIError: Error, HTTPResponseError, Sendable {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// The summary message.
    public var message: String
    /// Precise problems, with paths.
    public var details: [APIErrorDetail]
    /// Extra headers (Retry-After on 429, WWW-Authenticate on 401).
    public var headers: HTTPFields

    public init(
        _ status: HTTPResponse.Status, _ message: String, details: [APIErrorDetail] = [], headers: HTTPFields = [:]
    ) {
        self.status = status
        self.message = message
        self.details = details
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(APIErrorBody(error: message, details: details))
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The API's reading of a store error.
    init(_ error: StoreError) {
        switch error {
        case .notFound: self.init(.notFound, error.description)
        case .nameTaken: self.init(.conflict, error.description)
        case .versionMismatch:
            self.init(
                .preconditionFailed, error.description, details: [.init(path: "If-Match", message: error.description)])
        case .conflict: self.init(.conflict, error.description)
        }
    }
}

/// Converts every error thrown below it into the API's JSON error shape, so that Hummingbird's own
/// errors (404 for an unknown route, 413 for an oversized body) look like ours.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as StoreError {
            throw APIError(error)
        } catch let error as HTTPError {
            throw APIError(
                error.status, error.body ?? Self.defaultMessage(error.status), headers: error.headers)
        } catch let error as any HTTPResponseError {
            throw APIError(error.status, Self.defaultMessage(error.status))
        } catch is DecodingError {
            throw APIError(.badRequest, "the request body is not valid JSON of the expected shape")
        } catch {
            context.logger.error("request failed: \(error)")
            throw APIError(.internalServerError, "internal error")
        }
    }

    static func defaultMessage(_ status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: return "no such resource"
        case .contentTooLarge: return "request body too large"
        case .methodNotAllowed: return "method not allowed on this resource"
        default: return status.reasonPhrase.isEmpty ? "error \(status.code)" : status.reasonPhrase
        }
    }
}

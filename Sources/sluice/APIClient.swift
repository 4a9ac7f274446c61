// The management API client shared by the CLI's server commands (`policy apply|list|get|...`,
// `audit findings`, `dns-cache`, `stats`, `wiretap`): where the server is, the token, TLS trust,
// and one place that turns the API's error shape into a readable message and a non-zero exit.
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import SluiceAPI
import SluicePolicy

/// Options of every command that talks to a running `sluice run`.
struct ClientOptions: ParsableArguments {
    /// The default server: what `sluice run` listens on without `--api-listen`.
    static let defaultServer = "https://127.0.0.1:8443"

    @Option(help: "The management API (default: $SLUICE_SERVER, else \(ClientOptions.defaultServer)).")
    var server: String?

    @Option(help: "Bearer token (default: $SLUICE_TOKEN). Prefer the variable: arguments show up in `ps`.")
    var token: String?

    @Flag(help: "Do not verify the server's certificate (the self-signed one `sluice run` generates).")
    var insecure = false

    @Option(help: "Trust this PEM certificate (e.g. DATA_DIR/tls/cert.pem of the node) instead of the system's.")
    var cacert: String?

    @Flag(help: "Print the API's JSON instead of a table.")
    var json = false

    var serverURL: String {
        let text = server ?? ProcessInfo.processInfo.environment["SLUICE_SERVER"] ?? Self.defaultServer
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    var bearer: String? { token ?? ProcessInfo.processInfo.environment["SLUICE_TOKEN"] }
}

/// A failure to show the operator: the message goes to stderr and the exit status is 1.
struct ClientFailure: Error, CustomStringConvertible {
    let description: String
}

/// One API response, body collected.
struct APIReply {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }

    /// The body as JSON (an empty body is null).
    func document() throws -> JSONValue {
        if body.isEmpty { return .null }
        do {
            return try JSONValue.parse(body)
        } catch {
            throw ClientFailure(description: "the server's reply is not JSON: \(error)")
        }
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A connection to the management API for one command.
struct APIClient {
    let options: ClientOptions
    let http: HTTPClient

    /// Runs `body` with a client and shuts it down afterwards; failures become a message and exit 1.
    static func run(_ options: ClientOptions, _ body: (APIClient) async throws -> Void) async throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        if options.insecure { tls.certificateVerification = .none }
        if let cacert = options.cacert { tls.trustRoots = .file(cacert) }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: .seconds(10))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let client = APIClient(options: options, http: http)
        var failure: ClientFailure?
        do {
            try await body(client)
        } catch let error as ClientFailure {
            failure = error
        } catch let error as ExitCode {
            try? await http.shutdown()
            throw error
        } catch {
            failure = ClientFailure(description: client.describeTransportError(error))
        }
        try? await http.shutdown()
        if let failure {
            var standardError = FileHandle.standardError
            print("error: \(failure)", to: &standardError)
            throw ExitCode(1)
        }
    }

    /// Sends a request and returns the reply, whatever its status.
    func send(
        _ method: HTTPMethod, _ path: String, query: [(String, String?)] = [], body: [UInt8]? = nil,
        headers: [(String, String)] = []
    ) async throws -> APIReply {
        let response = try await open(method, path, query: query, body: body, headers: headers, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return APIReply(
            status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
            body: Array(bytes.readableBytesView))
    }

    /// Sends a request and returns the reply when it is a success; otherwise throws the server's error.
    func expect(
        _ method: HTTPMethod, _ path: String, query: [(String, String?)] = [], body: [UInt8]? = nil,
        headers: [(String, String)] = []
    ) async throws -> APIReply {
        let reply = try await send(method, path, query: query, body: body, headers: headers)
        guard (200..<300).contains(reply.status) else { throw Self.serverError(reply) }
        return reply
    }

    /// The response head; the body is left to stream (the wiretap).
    func open(
        _ method: HTTPMethod, _ path: String, query: [(String, String?)] = [], body: [UInt8]? = nil,
        headers: [(String, String)] = [], timeout: TimeAmount
    ) async throws -> HTTPClientResponse {
        var components = URLComponents()
        let present = query.compactMap { name, value in value.map { URLQueryItem(name: name, value: $0) } }
        if !present.isEmpty { components.queryItems = present }
        let suffix = components.percentEncodedQuery.map { "?\($0)" } ?? ""
        var request = HTTPClientRequest(url: options.serverURL + path + suffix)
        request.method = method
        if let bearer = options.bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return try await http.execute(request, timeout: timeout)
    }

    /// The API's `{"error", "details"}` as lines an operator can act on.
    static func serverError(_ reply: APIReply) -> ClientFailure {
        var lines: [String] = []
        if let document = try? JSONValue.parse(reply.body), let message = document["error"]?.text {
            lines.append("HTTP \(reply.status): \(message)")
            for detail in document["details"]?.elements ?? [] {
                let path = detail["path"]?.text ?? ""
                lines.append("  \(path.isEmpty ? "(body)" : path): \(detail["message"]?.text ?? "")")
            }
        } else {
            lines.append("HTTP \(reply.status): \(reply.text.prefix(500))")
        }
        switch reply.status {
        case 401: lines.append("  hint: pass --token or set SLUICE_TOKEN (`sluice token create` on the node makes one)")
        case 403: lines.append("  hint: this needs a token of an admin service account")
        default: break
        }
        return ClientFailure(description: lines.joined(separator: "\n"))
    }

    func describeTransportError(_ error: any Error) -> String {
        let text = "\(error)"
        var message = "cannot talk to \(options.serverURL): \(text)"
        if error is NIOSSLError || text.localizedCaseInsensitiveContains("certificate") {
            message += "\n  hint: `sluice run` uses a self-signed certificate by default: pass --cacert "
                + "DATA_DIR/tls/cert.pem to trust it, or --insecure"
        }
        return message
    }

    /// Prints the reply's JSON as the API sent it (one line, keys sorted).
    func printJSON(_ reply: APIReply) {
        print(reply.text)
    }
}

extension JSONValue {
    /// The member `key` of an object, or nil.
    subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// The elements of an array, or nil.
    var elements: [JSONValue]? {
        guard case .array(let values) = self else { return nil }
        return values
    }

    /// A scalar as text for a table cell (nil for null, containers as JSON).
    var text: String? {
        switch self {
        case .null: return nil
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .string(let value): return value
        case .array, .object: return jsonText
        }
    }

    /// Compact JSON text, keys in the order they came.
    var jsonText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    /// Indented JSON text with sorted keys, for people.
    var prettyText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }
}

/// Prints rows under a header, each column as wide as its widest cell.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows {
        for (index, cell) in row.enumerated() where index < widths.count {
            widths[index] = max(widths[index], cell.count)
        }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    print(line(header))
    for row in rows { print(line(row)) }
}

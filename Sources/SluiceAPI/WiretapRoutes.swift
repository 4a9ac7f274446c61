// `GET /api/v1/wiretap/stream`: live flows as Server-Sent Events. Each event is
//
//   event: flow            (or flow_end)
//   data: {"src": ..., "dst": ..., "src_port": ..., "verdict": ..., ...}
//
// followed by a blank line. `event: dropped` tells this client how many events its full buffer
// lost so far; a `: keep-alive` comment every 15 s keeps proxies from closing an idle stream and
// notices a client that left. Needs performance mode, like the audit findings.
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

struct WiretapRoutes {
    let deps: APIDependencies

    /// Events waiting per client before the oldest is dropped: a few seconds of a busy gateway's
    /// once-per-second flow updates, small enough that a thousand stalled clients stay cheap.
    static let bufferSize = 1024
    /// Keep-alive comment interval.
    static let heartbeatInterval = Duration.seconds(15)

    func register(on group: RouterGroup<SluiceRequestContext>) {
        group.get("wiretap/stream", use: stream)
    }

    @Sendable func stream(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        try await OperationsRoutes.requirePerformanceMode(deps.store)
        let query = request.uri.queryParameters
        let filter: FlowFilter
        switch FlowFilter.parse({ query.get($0) }) {
        case .success(let parsed): filter = parsed
        case .failure(let invalid): throw APIError(.badRequest, "invalid wiretap filter", details: invalid.issues)
        }
        let subscription = deps.wiretap.subscribe(filter, bufferSize: Self.bufferSize)
        let headers: HTTPFields = [
            .contentType: "text/event-stream", .cacheControl: "no-store",
            HTTPField.Name("X-Accel-Buffering")!: "no",
        ]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let heartbeat = Task {
                while !Task.isCancelled {
                    try await Task.sleep(for: Self.heartbeatInterval)
                    subscription.heartbeat()
                }
            }
            defer {
                heartbeat.cancel()
                subscription.cancel()
            }
            // Sent at once, so a client knows the stream is open before the first flow arrives.
            try await writer.write(ByteBuffer(string: ": sluice wiretap\n\n"))
            var reportedDrops: UInt64 = 0
            for await item in subscription.items {
                switch item {
                case .heartbeat:
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                case .event(let event):
                    try await writer.write(ByteBuffer(bytes: try Self.encode(event)))
                }
                let dropped = subscription.dropped
                if dropped != reportedDrops {
                    reportedDrops = dropped
                    try await writer.write(ByteBuffer(string: "event: dropped\ndata: {\"dropped\":\(dropped)}\n\n"))
                }
            }
            try await writer.finish(nil)
        })
    }

    /// One SSE message. JSON text never contains a raw newline, so `data:` is a single line.
    static func encode(_ event: FlowEvent) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let head = Array("event: \(event.kind.rawValue)\ndata: ".utf8)
        return head + Array(try encoder.encode(event)) + Array("\n\n".utf8)
    }
}

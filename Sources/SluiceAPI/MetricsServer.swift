// The Prometheus scrape endpoint, `GET /metrics`, on a listener of its own (plain HTTP, no token):
// scrapers get the metrics without an API token, and the management API's TLS and auth stay as
// they are. `sluice run --metrics-listen` picks the address; the default is loopback.
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// Factory of the metrics listener.
public enum MetricsServer {
    /// The default `--metrics-listen`: loopback only, so nothing is exposed until the operator says so.
    public static let defaultListen = "127.0.0.1:9464"

    /// The router: `GET /metrics` only.
    public static func router(_ deps: APIDependencies) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("metrics") { _, _ -> Response in
            let text = await deps.metrics.scrape(deps)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        return router
    }

    /// The application, a Service for the process's ServiceGroup.
    public static func application(
        _ deps: APIDependencies, host: String, port: Int, logger: Logger,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(deps), server: .http1(configuration: .init(idleTimeout: APIServer.idleTimeout)),
            configuration: .init(address: .hostname(host, port: port), serverName: "sluice-metrics"),
            onServerRunning: onServerRunning, logger: logger)
    }
}

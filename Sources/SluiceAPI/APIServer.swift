// Builds the management API: the router with its middleware (request metrics, error shape, then
// bearer auth on /api/v1) and the Hummingbird application on HTTPS (or plain HTTP on loopback when asked).
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import SluiceStore

/// Everything the routes use. Each member is safe to share across request tasks.
public struct APIDependencies: Sendable {
    /// Durable state.
    public var store: any ManagementStore
    /// Compiles and publishes the active policy.
    public var deployer: PolicyDeployer
    /// The dataplane (or NoDataplane).
    public var dataplane: any DataplaneControl
    /// The DNS proxy (or NoDNSProxy).
    public var dnsProxy: any DNSProxyControl
    /// In-memory audit findings on their way to the store.
    public var findings: FindingRecorder
    /// Failed-authentication limiter, per client address.
    public var authLimiter: FailedAuthLimiter
    /// Live flow events for the wiretap stream (the dataplane publishes into a WiretapHub).
    public var wiretap: any FlowEventSource
    /// Prometheus metrics: request counts and latency, filled by the router's middleware.
    public var metrics: SluiceMetrics

    public init(
        store: any ManagementStore, deployer: PolicyDeployer, dataplane: any DataplaneControl,
        dnsProxy: any DNSProxyControl, findings: FindingRecorder, authLimiter: FailedAuthLimiter = FailedAuthLimiter(),
        wiretap: any FlowEventSource = WiretapHub(), metrics: SluiceMetrics = SluiceMetrics()
    ) {
        self.wiretap = wiretap
        self.metrics = metrics
        self.store = store
        self.deployer = deployer
        self.dataplane = dataplane
        self.dnsProxy = dnsProxy
        self.findings = findings
        self.authLimiter = authLimiter
    }

    /// Dependencies for a node with only a store: no dataplane, no DNS proxy.
    public static func managementOnly(store: any ManagementStore) -> APIDependencies {
        let dataplane = NoDataplane()
        return APIDependencies(
            store: store, deployer: PolicyDeployer(store: store, dataplane: dataplane), dataplane: dataplane,
            dnsProxy: NoDNSProxy(), findings: FindingRecorder(store: store))
    }
}

/// How the API listens.
public struct APIListenConfiguration: Sendable {
    /// Address to bind (IPv4 or IPv6 literal, or a host name).
    public var host: String
    /// TCP port (0: any free port).
    public var port: Int
    /// TLS certificate chain and key; nil serves plain HTTP.
    public var tls: TLSMaterial?

    public init(host: String, port: Int, tls: TLSMaterial?) {
        self.host = host
        self.port = port
        self.tls = tls
    }
}

/// Factory of the API's router and application.
public enum APIServer {
    /// The largest request body accepted (413 beyond it).
    public static let maxBodyBytes = 4 * 1024 * 1024
    /// Connections idle longer than this are closed, so stuck clients do not hold sockets forever.
    public static let idleTimeout = TimeAmount.seconds(60)

    /// The router with every route and middleware.
    public static func router(_ deps: APIDependencies) -> Router<SluiceRequestContext> {
        let router = Router(context: SluiceRequestContext.self)
        router.add(middleware: RequestMetricsMiddleware(metrics: deps.metrics))
        router.add(middleware: APIErrorMiddleware())
        HealthRoutes(deps: deps).register(on: router)
        OpenAPIRoutes().register(on: router)
        let api = router.group("api/v1")
            .add(middleware: TokenAuthMiddleware(store: deps.store, limiter: deps.authLimiter))
        PolicyRoutes(deps: deps).register(on: api)
        OperationsRoutes(deps: deps).register(on: api)
        AccountRoutes(deps: deps).register(on: api)
        WiretapRoutes(deps: deps).register(on: api)
        return router
    }

    /// The application, ready to be run as a Service in the process's ServiceGroup.
    public static func application(
        _ deps: APIDependencies, listen: APIListenConfiguration, logger: Logger,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let http1 = HTTPServerBuilder.http1(
            configuration: .init(additionalChannelHandlers: [ExpectContinueHandler()], idleTimeout: idleTimeout))
        let server: HTTPServerBuilder
        if let tls = listen.tls {
            server = try .tls(http1, tlsConfiguration: tls.serverConfiguration())
        } else {
            server = http1
        }
        return Application(
            router: router(deps), server: server,
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "sluice"),
            onServerRunning: onServerRunning, logger: logger)
    }
}

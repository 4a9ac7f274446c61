// `sluice run`: the gateway process. Opens the store in the data directory, deploys the active
// policy, and runs the management API (and, later, the dataplane and DNS proxy) as Services in one
// ServiceGroup, which shuts everything down gracefully on SIGTERM or SIGINT.
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SluiceAPI
import SluiceDNS
import SluiceStore

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the gateway: the management API and the dataplane.")

    @Option(help: "Directory of the store, the TLS certificate and other state (created if missing).")
    var dataDir: String

    @Option(help: "Address and port of the management API, e.g. 0.0.0.0:8443 or [::1]:8443.")
    var apiListen: String = "127.0.0.1:8443"

    @Flag(help: "Serve the API over plain HTTP (only on a loopback address).")
    var apiPlaintext = false

    @Flag(help: "Allow --api-plaintext on a non-loopback address (labs only: tokens cross the wire in clear).")
    var apiPlaintextAnyAddress = false

    @Option(help: "PEM certificate chain for the API (default: self-signed, generated into the data directory).")
    var tlsCert: String?

    @Option(help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    @Option(help: "Dataplane: xdp (AF_XDP forwarding) or none (management-only node).")
    var dataplane: DataplaneKind = .xdp

    @Option(name: .customLong("dns-listen"), help: "Run the DNS proxy on ADDR:PORT, UDP and TCP (repeatable).")
    var dnsListen: [String] = []

    @Option(
        name: .customLong("dns-upstream"),
        help: "Upstream resolver ADDR[:PORT] for the DNS proxy (repeatable, tried in order; port 53 by default).")
    var dnsUpstream: [String] = []

    enum DataplaneKind: String, ExpressibleByArgument {
        case xdp
        case none
    }

    func validate() throws {
        _ = try ListenAddress(apiListen)
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        _ = try DNSProxySetup.makeProxy(listen: dnsListen, upstreams: dnsUpstream)
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "sluice")
        let listen = try ListenAddress(apiListen)
        if apiPlaintext, !listen.isLoopback, !apiPlaintextAnyAddress {
            throw ValidationError(
                "--api-plaintext is only allowed on a loopback address (got \(listen.host)); "
                    + "add --api-plaintext-any-address for a lab")
        }
        let dataControl: any DataplaneControl
        switch dataplane {
        case .none: dataControl = NoDataplane()
        case .xdp:
            throw ValidationError("the xdp dataplane is not part of this build yet; use --dataplane none")
        }

        let directory = URL(fileURLWithPath: dataDir)
        let store = try SQLiteStore(directory: directory)
        let deployer = PolicyDeployer(store: store, dataplane: dataControl)
        let findings = FindingRecorder(store: store)
        let dnsProxy = try DNSProxySetup.makeProxy(listen: dnsListen, upstreams: dnsUpstream)
        if let dnsProxy { await DNSProxySetup.connect(dnsProxy, deployer: deployer, findings: findings) }
        let deps = APIDependencies(
            store: store, deployer: deployer, dataplane: dataControl,
            dnsProxy: dnsProxy.map { DNSProxyAdapter(proxy: $0) } ?? NoDNSProxy(), findings: findings)
        await dataControl.setPerformanceMode(try await store.performanceMode())
        let state = await deployer.reconcile()
        logger.info(
            "deployed",
            metadata: ["policy": "\(state.policyID ?? "none")", "generation": "\(state.generation)"])

        var tls: TLSMaterial?
        if !apiPlaintext {
            if let tlsCert, let tlsKey {
                tls = try TLSMaterial.load(certificatePath: tlsCert, keyPath: tlsKey)
            } else {
                tls = try TLSMaterial.loadOrCreateSelfSigned(
                    dataDirectory: directory, hosts: [listen.host, ProcessInfo.processInfo.hostName])
            }
        }
        let scheme = tls == nil ? "http" : "https"
        let app = try APIServer.application(
            deps, listen: APIListenConfiguration(host: listen.host, port: listen.port, tls: tls), logger: logger,
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? listen.port
                logger.info("management API listening on \(scheme)://\(listen.urlHost):\(port)")
            })
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: app), .init(service: findings)]
                    + (dnsProxy.map { [.init(service: DNSProxyService(proxy: $0, logger: logger))] } ?? []),
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("stopped")
    }
}

/// `HOST:PORT` with IPv6 hosts in brackets, as given to `--api-listen`.
struct ListenAddress {
    var host: String
    var port: Int

    init(_ text: String) throws {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(after: close)...].drop { $0 == ":" }
        } else if let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") {
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        } else {
            throw ValidationError("expected HOST:PORT or [IPv6]:PORT, got '\(text)'")
        }
        guard let port = Int(portPart), (0...65535).contains(port), !hostPart.isEmpty else {
            throw ValidationError("expected HOST:PORT with a port from 0 to 65535, got '\(text)'")
        }
        self.host = String(hostPart)
        self.port = port
    }

    /// Loopback: 127.0.0.0/8, ::1 or localhost.
    var isLoopback: Bool { host == "localhost" || host == "::1" || host.hasPrefix("127.") }

    /// The host as it appears in a URL.
    var urlHost: String { host.contains(":") ? "[\(host)]" : host }
}

// `sluice run`: the gateway process. Opens the store in the data directory, starts the AF_XDP
// dataplane (`--dataplane xdp`: XDP on --inside and --outside, one pinned worker per queue, the
// --policy file in force at once), deploys the store's active policy, and runs the management API
// and the dataplane as Services in one ServiceGroup, which shuts everything down gracefully on
// SIGTERM or SIGINT (workers stopped, XDP detached, the nftables forward-path block removed).
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SluiceAPI
import SluiceDataplane
import SluicePolicy
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

    @Option(help: """
        Address and port of the Prometheus endpoint GET /metrics (plain HTTP, no token), or `off`. \
        Loopback by default: expose it deliberately.
        """)
    var metricsListen: String = MetricsServer.defaultListen

    @Option(help: "Dataplane: xdp (AF_XDP forwarding) or none (management-only node).")
    var dataplane: DataplaneKind = .xdp

    @OptionGroup(title: "DNS proxy") var dns: DNSProxyOptions

    enum DataplaneKind: String, ExpressibleByArgument {
        case xdp
        case none
    }

    @Option(help: "The inside interface (workloads), for --dataplane xdp.")
    var inside: String?

    @Option(help: "The outside interface (uplink), for --dataplane xdp.")
    var outside: String?

    @Option(help: "Policy file (envelope or bare policy) in force from start and while the store has no active one.")
    var policy: String?

    @Option(help: "Worker queues on both interfaces (default: the inside interface's rx queue count).")
    var queues: Int?

    @Option(help: "CPUs of the workers, comma-separated, one per queue (default: worker i on CPU i).")
    var cores: String?

    @Option(help: "Most flows tracked at once; new flows beyond it are refused and counted.")
    var flowTableSize: Int = 262_144

    @Flag(help: "Keep every transit packet on the AF_XDP workers (no XDP flow offload).")
    var noOffload = false

    @Flag(help: "Answer a denied new TCP connection with an RST to the client instead of dropping it silently.")
    var resetDeniedTcp = false

    @Option(help: "Idle timeout of UDP flows in seconds.")
    var udpTimeout: Double = 60

    func validate() throws {
        _ = try ListenAddress(apiListen)
        if metricsListen != "off" { _ = try ListenAddress(metricsListen) }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        if dataplane == .xdp && (inside == nil || outside == nil) {
            throw ValidationError("--dataplane xdp needs --inside IF and --outside IF (or --dataplane none)")
        }
        if let queues, queues < 1 { throw ValidationError("--queues must be at least 1") }
        if dns.redirect && dataplane != .xdp { throw ValidationError("--dns-redirect needs --dataplane xdp") }
        if flowTableSize < 1 { throw ValidationError("--flow-table-size must be at least 1") }
        if !(udpTimeout > 0) { throw ValidationError("--udp-timeout must be positive") }
        _ = try parsedCores()
    }

    func parsedCores() throws -> [Int]? {
        guard let cores else { return nil }
        let list = cores.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !list.isEmpty, list.allSatisfy({ ($0 ?? -1) >= 0 }) else {
            throw ValidationError("--cores expects a comma-separated list of CPU numbers, e.g. 0,1")
        }
        return list.map { $0! }
    }

    /// Reads and compiles --policy.
    func loadLocalPolicy(logger: Logger) throws -> (id: String, compiled: CompiledPolicy, request: PolicyRequest)? {
        guard let policy else { return nil }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: policy))
        let parsed: ParsedPolicy<PolicyRequest>
        do {
            parsed = try PolicyParser.parseDocument(try JSONValue.parse(Array(bytes)))
        } catch let error as PolicyValidationError {
            throw ValidationError("--policy \(policy): \(error)")
        } catch {
            throw ValidationError("--policy \(policy): \(error)")
        }
        for warning in parsed.warnings { logger.warning("--policy \(policy): \(warning)") }
        let id = parsed.value.name ?? URL(fileURLWithPath: policy).deletingPathExtension().lastPathComponent
        return (id, PolicyCompiler.compile(parsed.value), parsed.value)
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
        // The proxy comes first: the dataplane reads its learned addresses (hostname rules).
        let dnsProxy = try dns.makeProxy()
        // --policy governs the dataplane and the DNS proxy alike (whichever runs).
        let localPolicy = try loadLocalPolicy(logger: logger)
        let dataControl: any DataplaneControl
        var xdpControl: XDPDataplaneControl?
        switch dataplane {
        case .none: dataControl = NoDataplane()
        case .xdp:
            var configuration = DataplaneConfiguration(inside: inside!, outside: outside!)
            configuration.queues = queues
            configuration.cores = try parsedCores()
            configuration.flowTable.capacity = flowTableSize
            configuration.offload = !noOffload
            configuration.resetDeniedTCP = resetDeniedTcp
            configuration.flowTable.timeouts.udp = udpTimeout
            configuration.dnsRedirectPort = dns.redirectPort
            let log: @Sendable (String) -> Void = { logger.info("\($0)") }
            let plane = if let dnsProxy {
                Dataplane(configuration, learned: dnsProxy.learned.reader, log: log)
            } else {
                Dataplane(configuration, learned: NoLearnedAddresses(), log: log)
            }
            try plane.start()
            let control = XDPDataplaneControl(dataplane: plane, localPolicy: localPolicy.map { ($0.id, $0.compiled) })
            if let localPolicy {
                let confirmed = await plane.publish(localPolicy.compiled, tag: localPolicy.id)
                logger.info(
                    "policy file in force", metadata: ["policy": "\(localPolicy.id)", "confirmed": "\(confirmed)"])
            }
            dataControl = control
            xdpControl = control
        }
        // Whatever ends this function (an error below, or the group's shutdown) takes XDP and the
        // forward-path block down with it; stop() is idempotent.
        defer { xdpControl?.dataplane.stop() }

        let directory = URL(fileURLWithPath: dataDir)
        let metrics = SluiceMetrics()
        // Every component writes through the instrumented store, so store latency covers them all.
        let store = InstrumentedStore(try SQLiteStore(directory: directory), metrics: metrics)
        let deployer = PolicyDeployer(store: store, dataplane: dataControl)
        let findings = FindingRecorder(store: store)
        // The dataplane's event collector publishes flow events here (FlowEventSink).
        let wiretap = WiretapHub()
        if let dnsProxy {
            await DNSProxySetup.connect(dnsProxy, deployer: deployer, findings: findings,
                                        local: localPolicy.map { ($0.id, $0.request) })
        }
        let dnsControl: any DNSProxyControl = dnsProxy.map { DNSProxyAdapter(proxy: $0) } ?? NoDNSProxy()
        let deps = APIDependencies(
            store: store, deployer: deployer, dataplane: dataControl, dnsProxy: dnsControl, findings: findings,
            wiretap: wiretap, metrics: metrics)
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
        // Shutdown runs in reverse order: the wiretap ends its streams before the API server waits
        // for open requests, so long-lived SSE clients cannot hold up a SIGTERM.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: app), .init(service: findings), .init(service: wiretap),
        ]
        if metricsListen != "off" {
            let address = try ListenAddress(metricsListen)
            services.append(.init(service: MetricsServer.application(
                deps, host: address.host, port: address.port, logger: logger,
                onServerRunning: { channel in
                    let port = channel.localAddress?.port ?? address.port
                    logger.info("metrics listening on http://\(address.urlHost):\(port)/metrics")
                })))
        }
        if let xdpControl {
            let feed = WiretapFeed(dataplane: xdpControl.dataplane, sink: wiretap, dns: dnsControl)
            services.append(.init(service: DataplaneService(control: xdpControl, findings: findings, wiretap: feed,
                                                            logger: logger)))
        }
        if let dnsProxy {
            services.append(.init(service: DNSProxyService(proxy: dnsProxy, logger: logger)))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services,
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

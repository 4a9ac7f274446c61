// The AF_XDP dataplane as the API and the ServiceGroup see it: `DataplaneControl` over
// SluiceDataplane.Dataplane, and a Service that drains the workers' event rings into the
// finding recorder and, on SIGTERM/SIGINT (graceful shutdown), stops the workers, detaches XDP
// and removes the nftables forward-path block.
//
// `--policy FILE` gives a local policy: it is in force from start, and whenever the store has
// no active policy (the API's publish(nil)); an active policy from the store replaces it.
import Foundation
import Logging
import ServiceLifecycle
import SluiceAPI
import SluiceDataplane
import SluicePolicy
import SluiceStore

/// `DataplaneControl` for the AF_XDP dataplane. Called from any task.
final class XDPDataplaneControl: DataplaneControl, @unchecked Sendable {
    let dataplane: Dataplane
    /// The `--policy` file's policy: (id for findings, compiled tables).
    let localPolicy: (id: String, compiled: CompiledPolicy)?
    private let lock = NSLock()
    private var performanceMode = true

    init(dataplane: Dataplane, localPolicy: (id: String, compiled: CompiledPolicy)?) {
        self.dataplane = dataplane
        self.localPolicy = localPolicy
    }

    var isPresent: Bool { true }

    func publish(_ deployment: PolicyDeployment?) async throws {
        let confirmed: Bool
        if let deployment {
            confirmed = await dataplane.publish(deployment.compiled, tag: deployment.policyID,
                                                externalGeneration: deployment.generation)
        } else {
            confirmed = await dataplane.publish(localPolicy?.compiled, tag: localPolicy?.id ?? "")
        }
        if !confirmed { throw DataplaneError("workers did not confirm the new policy within 5 s") }
    }

    func status() async -> DataplaneStatus {
        let configuration = dataplane.configuration
        return DataplaneStatus(
            kind: "xdp", running: dataplane.running, confirmedGeneration: dataplane.confirmedGeneration,
            detail: "\(configuration.inside) ⇄ \(configuration.outside), \(configuration.queues ?? 0) queues")
    }

    func counters() async -> [String: UInt64] { dataplane.counters() }

    /// Performance mode *enabled* means the event surfaces are on (docs/api.md): workers emit
    /// deny/audit events and they become findings; disabled, workers emit none.
    func setPerformanceMode(_ enabled: Bool) async {
        lock.withLock { performanceMode = enabled }
        dataplane.setEventsEnabled(enabled)
    }

    /// Whether findings are collected.
    var collectsFindings: Bool { lock.withLock { performanceMode } }
}

/// Runs until graceful shutdown: drains events into findings and the wiretap, then stops the
/// dataplane.
struct DataplaneService: Service {
    let control: XDPDataplaneControl
    let findings: FindingRecorder
    let wiretap: WiretapFeed
    let logger: Logger

    func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                await drain()
                await wiretap.tick()
                try? await Task.sleep(for: .milliseconds(100))
            }
        } onGracefulShutdown: {
            logger.info("dataplane: graceful shutdown")
        }
        await drain()
        control.dataplane.stop()
        logger.info("dataplane: XDP detached, forward-path block removed")
    }

    private func drain() async {
        var batch: [AuditFinding] = []
        let collect = control.collectsFindings
        let now = Date()
        control.dataplane.drainEvents { event in
            guard let names = control.dataplane.describe(event) else { return }
            wiretap.observe(event, names: names, at: now)
            guard collect, event.kind != .flowCut else { return }
            var finding = DataplaneService.finding(
                event, policy: names.tag, group: names.group, rule: names.rule, at: now)
            if event.kind == .tls {  // a TLS handshake decision: the SNI is the finding's hostname
                finding.type = "tls_deny"
                finding.hostname = control.dataplane.tls.serverName(for: event.tuple)
            }
            batch.append(finding)
        }
        for finding in batch { await findings.record(finding) }
    }

    static func finding(_ event: DataplaneEvent, policy: String, group: String?, rule: String?, at time: Date)
        -> AuditFinding
    {
        let tuple = event.tuple
        let destination: IPAddress = tuple.family == .v4 ? .v4(tuple.destinationV4) : .v6(tuple.destination)
        let hasPorts = PacketQuery.hasPorts(tuple.protocolNumber)
        return AuditFinding(
            type: "packet_deny", policyID: policy, sourceGroup: group, rule: rule,
            destination: destination.description, port: hasPorts ? Int(tuple.destinationPort) : nil,
            proto: FlowEvent.protoName(tuple.protocolNumber), enforced: event.enforced,
            firstSeen: time, lastSeen: time)
    }
}

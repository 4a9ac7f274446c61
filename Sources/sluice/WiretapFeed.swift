// What the wiretap shows of the AF_XDP dataplane: FlowEvents built from the shared flow table
// and the workers' deny/audit events, published to the WiretapHub. Nothing here runs on a
// packet worker, and nothing runs at all while no wiretap client is connected.
//
//   worker event rings ──drain (DataplaneService, 100 ms)──► observe():  deny → `flow` (deny)
//                                                                       audit → remember the flow
//                                                                       cut   → `flow_end` (deny)
//   flow table ──entries() once per second──► snapshot(): every live flow → `flow` (counters so far)
//                                                          gone since the last snapshot → `flow_end`
//
// Why snapshots rather than per-packet events: the workers would otherwise need a ring write per
// packet (or per flow and second) on the hot path; the table already holds each flow's verdict
// and counters, so reading it once a second costs the workers one shard lock handover per shard
// and gives the wiretap's once-per-second-per-flow rate for free. A flow that opens and ends
// between two snapshots is not shown (its deny or audit finding still is, and it reaches the
// audit findings either way). Decisions in docs/api.md ("Wiretap").
import Foundation
import SluiceAPI
import SluiceDataplane
import SluicePacket
import SluicePolicy

/// Builds the wiretap's flow events for one dataplane. Only DataplaneService's run loop calls it,
/// one call at a time, which is what makes the unchecked Sendable sound.
final class WiretapFeed: @unchecked Sendable {
    let dataplane: Dataplane
    let sink: WiretapHub
    let dns: any DNSProxyControl
    /// Flows known from the last snapshot, with their last event (for `flow_end`).
    private var live: [FlowKey: FlowEvent] = [:]
    /// Flows an audit-mode deny let through (their verdict is `audit`), bounded.
    private var audited: Set<FlowKey> = []
    private let maxAudited = 65_536
    private var lastSnapshot = ContinuousClock.now - .seconds(10)

    init(dataplane: Dataplane, sink: WiretapHub, dns: any DNSProxyControl) {
        self.dataplane = dataplane
        self.sink = sink
        self.dns = dns
    }

    /// Takes one drained worker event (with its names resolved by the dataplane).
    func observe(_ event: DataplaneEvent, names: (tag: String, group: String?, rule: String?), at time: Date) {
        guard sink.hasSubscribers else { return }
        let key = FlowKey.canonical(event.tuple).key
        switch event.kind {
        case .finding, .rejudged, .tls:
            if event.enforced {
                // A denied new flow never enters the table: this is its only appearance.
                var denied = WiretapFeed.flowEvent(.flow, event.tuple, key: key, verdict: .deny, at: time)
                denied.policyID = names.tag.isEmpty ? nil : names.tag
                denied.sourceGroup = names.group
                denied.rule = names.rule
                denied.packets = 1
                if event.kind == .tls { denied.hostname = dataplane.tls.serverName(for: event.tuple) }
                sink.publish(denied)
            } else {
                if audited.count >= maxAudited { audited.removeAll(keepingCapacity: true) }
                audited.insert(key)
            }
        case .flowCut:
            var ended = live.removeValue(forKey: key)
                ?? WiretapFeed.flowEvent(.flow, event.tuple, key: key, verdict: .deny, at: time)
            ended.kind = .flowEnd
            ended.verdict = .deny
            ended.time = time
            audited.remove(key)
            sink.publish(ended)
        }
    }

    /// Publishes the flow table's state when a second has passed since the last time and a
    /// client watches; forgets everything when nobody does (the next client starts afresh).
    func tick() async {
        guard sink.hasSubscribers else {
            live.removeAll()
            audited.removeAll()
            return
        }
        let now = ContinuousClock.now
        guard now - lastSnapshot >= .seconds(1) else { return }
        lastSnapshot = now
        let hostnames = await hostnamesByAddress()
        let time = Date()
        var current: [FlowKey: FlowEvent] = [:]
        // Offloaded flows' packets are counted by the XDP program: bring them in first.
        dataplane.syncOffloadedFlows()
        for entry in dataplane.flows.entries() {
            var event = WiretapFeed.flowEvent(.flow, entry.initiatorTuple, key: entry.key,
                                              verdict: audited.contains(entry.key) ? .audit : .allow, at: time)
            if let names = dataplane.describe(entry) {
                event.policyID = names.tag.isEmpty ? nil : names.tag
                event.sourceGroup = names.group
                event.rule = names.rule
            }
            // The SNI of a TLS-inspected flow, else the DNS name its address was learned from.
            event.hostname = dataplane.tls.serverName(for: entry.initiatorTuple) ?? hostnames[event.dst.description]
            event.packets = UInt64(entry.packets)
            event.bytes = entry.bytes
            current[entry.key] = event
            sink.publish(event)
        }
        for (key, var last) in live where current[key] == nil {
            last.kind = .flowEnd
            last.time = time
            audited.remove(key)
            sink.publish(last)
        }
        live = current
    }

    /// Learned DNS names by address (the newest binding wins), so flows show the name they were
    /// resolved from.
    private func hostnamesByAddress() async -> [String: String] {
        guard dns.isPresent else { return [:] }
        var result: [String: String] = [:]
        for entry in await dns.cacheEntries() {
            for address in entry.addresses { result[address.address] = entry.hostname }
        }
        return result
    }

    /// A FlowEvent for the initiator's `tuple`; the flow id is stable for the key's life.
    static func flowEvent(_ kind: FlowEvent.Kind, _ tuple: FiveTuple, key: FlowKey, verdict: FlowVerdict, at time: Date)
        -> FlowEvent
    {
        let v4 = tuple.family == .v4
        // ICMP echo flows keep their identifier in the port fields; the wiretap shows no ports for them.
        let ports = PacketQuery.hasPorts(tuple.protocolNumber)
        return FlowEvent(
            kind: kind, flowID: UInt64(bitPattern: Int64(key.hashValue)), time: time,
            src: v4 ? .v4(tuple.sourceV4) : .v6(tuple.source), dst: v4 ? .v4(tuple.destinationV4) : .v6(tuple.destination),
            srcPort: ports ? tuple.sourcePort : 0, dstPort: ports ? tuple.destinationPort : 0,
            proto: tuple.protocolNumber, verdict: verdict)
    }
}

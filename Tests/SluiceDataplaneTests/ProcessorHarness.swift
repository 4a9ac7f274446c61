// Test support: a PacketProcessor over a real FlowTable and a hand-made forwarding snapshot,
// fed with frames built by FrameBuilder, no rings and no root. The topology it pretends:
//
//   client 10.0.0.2 / fd00::2 ── inside (if 1, 10.0.0.1) [gateway] outside (if 2, 192.0.2.1) ── router 192.0.2.254

import Atomics
import Foundation
import SluicePacket
import SluicePolicy
@testable import SluiceDataplane

func compilePolicy(_ json: String) throws -> CompiledPolicy {
    PolicyCompiler.compile(try PolicyParser.parseRequest(jsonBytes: Array(json.utf8)).value)
}

func ipv4(_ text: String) -> UInt128 {
    guard case .v4(let value) = IPAddress(text)! else { fatalError("not IPv4: \(text)") }
    return UInt128(value)
}

func ipv6(_ text: String) -> UInt128 {
    guard case .v6(let value) = IPAddress(text)! else { fatalError("not IPv6: \(text)") }
    return value
}

enum Topology {
    static let insideMAC = MACAddress(0x02_00_00_00_01_01)
    static let outsideMAC = MACAddress(0x02_00_00_00_02_01)
    static let clientMAC = MACAddress(0x02_00_00_00_01_02)
    static let routerMAC = MACAddress(0x02_00_00_00_02_FE)
    static let client = ipv4("10.0.0.2")
    static let client6 = ipv6("fd00::2")
    static let server = ipv4("198.51.100.7")
    static let server6 = ipv6("2001:db8::7")

    static func snapshot(routerResolved: Bool = true, clientResolved: Bool = true) -> ForwardingSnapshot {
        var neighbours: [ForwardingSnapshot.Neighbour] = []
        if clientResolved {
            neighbours.append(.init(interfaceIndex: 1, family: .v4, address: client, mac: clientMAC))
            neighbours.append(.init(interfaceIndex: 1, family: .v6, address: client6, mac: clientMAC))
        }
        if routerResolved {
            neighbours.append(.init(interfaceIndex: 2, family: .v4, address: ipv4("192.0.2.254"), mac: routerMAC))
            neighbours.append(.init(interfaceIndex: 2, family: .v6, address: ipv6("fd01::fe"), mac: routerMAC))
        }
        return ForwardingSnapshot(
            inside: .init(index: 1, mac: insideMAC, ipv4: UInt32(ipv4("10.0.0.1")), ipv6: ipv6("fd00::1")),
            outside: .init(index: 2, mac: outsideMAC, ipv4: UInt32(ipv4("192.0.2.1")), ipv6: ipv6("fd01::1")),
            routes: [
                .init(family: .v4, prefix: ipv4("10.0.0.0"), prefixLength: 24, gateway: nil, interfaceIndex: 1),
                .init(family: .v4, prefix: ipv4("192.0.2.0"), prefixLength: 24, gateway: nil, interfaceIndex: 2),
                .init(family: .v4, prefix: 0, prefixLength: 0, gateway: ipv4("192.0.2.254"), interfaceIndex: 2),
                .init(family: .v6, prefix: ipv6("fd00::"), prefixLength: 64, gateway: nil, interfaceIndex: 1),
                .init(family: .v6, prefix: 0, prefixLength: 0, gateway: ipv6("fd01::fe"), interfaceIndex: 2),
            ],
            neighbours: neighbours)
    }
}

/// One processor, its flow table and rings; `send` runs one frame through it.
final class ProcessorHarness: @unchecked Sendable {
    let flows: FlowTable
    let events = SPSCRing<DataplaneEvent>(capacity: 64)
    let neighbourRequests = SPSCRing<NeighbourRequest>(capacity: 16)
    let pending = PendingCounters()
    let processor: PacketProcessor<NoLearnedAddresses>
    let tls: TLSInspector
    var forwarding: ForwardingSnapshot? = Topology.snapshot()
    var policy: CompiledPolicy?
    var generation: UInt64 = 1
    let frame = UnsafeMutableRawPointer.allocate(byteCount: 16_384, alignment: 64)
    var length = 0

    init(flowTable: FlowTableConfiguration = FlowTableConfiguration(capacity: 1024, shardCount: 4),
         policy: CompiledPolicy? = nil, eventsEnabled: UnsafeAtomic<Bool>? = nil,
         tls: TLSInspectorConfiguration = ProcessorHarness.smallTLS, offload: OffloadPort? = nil,
         resetDeniedTCP: Bool = false) {
        flows = FlowTable(flowTable, seed: 42)
        self.policy = policy
        self.tls = TLSInspector(tls)
        processor = PacketProcessor(flows: flows.handle, learned: NoLearnedAddresses(), counters: pending,
                                    events: events.producer, neighbourRequests: neighbourRequests.producer, worker: 0,
                                    eventsEnabled: eventsEnabled, tls: self.tls, offload: offload,
                                    resetDeniedTCP: resetDeniedTCP)
    }

    /// A small TLS-pending pool for tests.
    static var smallTLS: TLSInspectorConfiguration {
        var configuration = TLSInspectorConfiguration()
        configuration.maxPendingFlows = 8
        configuration.rememberedFlows = 64
        return configuration
    }

    deinit {
        frame.deallocate()
        pending.deallocate()
    }

    /// Builds the frame (addressed to the gateway's MAC on `side`) and processes it at `now` seconds.
    @discardableResult
    func send(_ builder: FrameBuilder, from side: Side, at now: Double = 0, payload: [UInt8] = [1, 2, 3, 4])
        -> PacketDecision
    {
        let bytes = builder.bytes(payload: payload)
        return send(bytes: bytes, from: side, at: now)
    }

    @discardableResult
    func send(bytes: [UInt8], from side: Side, at now: Double = 0) -> PacketDecision {
        bytes.withUnsafeBytes { frame.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        length = bytes.count
        let compiled = policy.map { Unmanaged.passUnretained($0) }
        let table = forwarding.map { Unmanaged.passUnretained($0) }
        return withExtendedLifetime((policy, forwarding)) {
            processor.process(frame: frame, length: bytes.count, side: side, now: UInt64(now * 1e9) + 1,
                              policy: (generation, compiled), forwarding: table)
        }
    }

    /// The frame as it is now (after an in-place rewrite).
    var frameBytes: [UInt8] { Array(UnsafeRawBufferPointer(start: frame, count: length)) }

    /// The RSTs the worker would send for `decision` (of the frame last sent, from `side`), as it
    /// does: the sender's first, then the receiver's; each with its egress side.
    func resets(for decision: PacketDecision, from side: Side) -> [(side: Side, frame: [UInt8])] {
        guard case .reset(_, let bothEnds) = decision.action, let forwarding else {
            return []
        }
        var result: [(side: Side, frame: [UInt8])] = []
        for target in bothEnds ? [TCPResetTarget.sender, .receiver] : [.sender] {
            var output = [UInt8](repeating: 0, count: 256)
            let written = output.withUnsafeMutableBytes { buffer in
                withExtendedLifetime(forwarding) {
                    processor.writeReset(target,
                                         original: UnsafeRawBufferPointer(start: frame, count: length), side: side,
                                         forwarding: Unmanaged.passUnretained(forwarding), into: buffer)
                }
            }
            if let written { result.append((written.egress, Array(output[0..<written.length]))) }
        }
        return result
    }

    func count(_ counter: DataplaneCounter) -> UInt64 { pending.slots[counter.rawValue] }

    func drainEvents() -> [DataplaneEvent] {
        var consumer = events.consumer
        var result: [DataplaneEvent] = []
        while let event = consumer.pop() { result.append(event) }
        return result
    }
}

/// Frames of the test topology.
enum Frames {
    static func udp(from source: UInt128 = Topology.client, to destination: UInt128 = Topology.server,
                    sourcePort: UInt16 = 40000, port: UInt16 = 53, ttl: UInt8 = 64, v6: Bool = false) -> FrameBuilder {
        FrameBuilder(destinationMAC: Topology.insideMAC, sourceMAC: Topology.clientMAC,
                     tuple: FiveTuple(family: v6 ? .v6 : .v4, protocolNumber: IPProtocolNumber.udp, source: source,
                                      destination: destination, sourcePort: sourcePort, destinationPort: port),
                     hopLimit: ttl)
    }

    static func tcp(from source: UInt128 = Topology.client, to destination: UInt128 = Topology.server,
                    sourcePort: UInt16 = 40000, port: UInt16 = 443, flags: TCPFlags, v6: Bool = false) -> FrameBuilder {
        FrameBuilder(destinationMAC: Topology.insideMAC, sourceMAC: Topology.clientMAC,
                     tuple: FiveTuple(family: v6 ? .v6 : .v4, protocolNumber: IPProtocolNumber.tcp, source: source,
                                      destination: destination, sourcePort: sourcePort, destinationPort: port),
                     tcpFlags: flags)
    }

    static func echo(from source: UInt128 = Topology.client, to destination: UInt128 = Topology.server,
                     identifier: UInt16 = 7, reply: Bool = false) -> FrameBuilder {
        FrameBuilder(destinationMAC: Topology.insideMAC, sourceMAC: Topology.clientMAC,
                     tuple: FiveTuple(family: .v4, protocolNumber: IPProtocolNumber.icmp, source: source,
                                      destination: destination, sourcePort: identifier, destinationPort: identifier),
                     icmpType: reply ? 0 : 8)
    }

    /// A reply: the tuple reversed.
    static func reply(_ builder: FrameBuilder, flags: TCPFlags? = nil) -> FrameBuilder {
        var reply = builder
        reply.tuple = builder.tuple.reversed()
        reply.destinationMAC = Topology.outsideMAC
        reply.sourceMAC = Topology.routerMAC
        if let flags { reply.tcpFlags = flags }
        if reply.icmpType == 8 { reply.icmpType = 0 }
        return reply
    }
}

enum Policies {
    /// UDP 53 and TCP 443 and ICMP echo allowed from 10.0.0.0/24 (and fd00::/64); the rest denied.
    static let web = """
    {"mode": "enforce", "policy": {"default_policy": "deny", "source_groups": [
      {"id": "clients", "sources": {"cidrs": ["10.0.0.0/24", "fd00::/64"]}, "rules": [
        {"id": "dns", "action": "allow", "match": {"proto": "udp", "dst_ports": [53]}},
        {"id": "https", "action": "allow", "match": {"proto": "tcp", "dst_ports": [443]}},
        {"id": "ping", "action": "allow", "match": {"proto": "icmp"}}
      ]}]}}
    """

    /// The same, but DNS is no longer allowed.
    static let noDNS = """
    {"mode": "enforce", "policy": {"default_policy": "deny", "source_groups": [
      {"id": "clients", "sources": {"cidrs": ["10.0.0.0/24", "fd00::/64"]}, "rules": [
        {"id": "https", "action": "allow", "match": {"proto": "tcp", "dst_ports": [443]}}
      ]}]}}
    """

    static let webAudit = web.replacingOccurrences(of: "\"mode\": \"enforce\"", with: "\"mode\": \"audit\"")
}

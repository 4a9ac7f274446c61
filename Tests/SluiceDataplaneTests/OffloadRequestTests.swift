// The worker half of flow offload without root or XDP: which packets make a worker ask for an
// install (FlowEntry.mayOffload, once per flow and generation), the on/off switch, a full
// request ring, and the flow table's side of the harvest (counts and last-seen from the
// program keep an offloaded flow alive through the sweep; the sweep reports removed ones).

import Atomics
import CSluiceXDP
import SluicePacket
import SluicePolicy
import Testing
@testable import SluiceDataplane

@Suite struct OffloadRequestTests {
    /// A harness whose processor asks for offloads through `ring` while `enabled`.
    final class Setup {
        let ring: SPSCRing<OffloadRequest>
        let enabled = UnsafeAtomic<Bool>.create(true)
        let events = UnsafeAtomic<Bool>.create(true)
        let denyCache = UnsafeMutablePointer<UInt64>.allocate(capacity: OffloadPort.denyCacheSize)
        let gateway: ProcessorHarness

        init(ringCapacity: Int = 64, timeouts: FlowTimeouts = FlowTimeouts()) throws {
            ring = SPSCRing(capacity: ringCapacity)
            denyCache.initialize(repeating: 0, count: OffloadPort.denyCacheSize)
            gateway = ProcessorHarness(
                flowTable: FlowTableConfiguration(capacity: 1024, shardCount: 4, timeouts: timeouts),
                policy: try compilePolicy(Policies.web), eventsEnabled: events,
                offload: OffloadPort(requests: ring.producer, enabled: enabled, denyCache: denyCache))
        }

        deinit {
            enabled.destroy()
            events.destroy()
            denyCache.deallocate()
        }

        func requests() -> [OffloadRequest] {
            var consumer = ring.consumer
            var result: [OffloadRequest] = []
            while let request = consumer.pop() { result.append(request) }
            return result
        }
    }

    @Test func udpIsRequestedOnceFromItsFirstPacketAndAgainAfterANewGeneration() throws {
        let setup = try Setup()
        let dns = Frames.udp()
        #expect(setup.gateway.send(dns, from: .inside).action == .forward(.outside))
        #expect(setup.requests() == [OffloadRequest(initiator: dns.tuple, generation: 1)])
        setup.gateway.send(dns, from: .inside)
        setup.gateway.send(Frames.reply(dns), from: .outside)
        #expect(setup.requests().isEmpty, "once per flow")
        #expect(setup.gateway.flows.entry(dns.tuple)?.offloadRequested == true)
        #expect(setup.gateway.count(.offloadRequests) == 1)
        // A new policy that still allows it: judged again, the old entry is stale, asked again.
        setup.gateway.generation = 2
        setup.gateway.send(Frames.reply(dns), from: .outside)
        #expect(setup.requests() == [OffloadRequest(initiator: dns.tuple, generation: 2)],
                "the reply's packet asks with the initiator's tuple")
    }

    @Test func tcpOnlyOnceEstablishedAndNeverForControlPackets() throws {
        let setup = try Setup()
        let syn = Frames.tcp(flags: [.syn])
        setup.gateway.send(syn, from: .inside)
        setup.gateway.send(Frames.reply(syn, flags: [.syn, .ack]), from: .outside)
        #expect(setup.requests().isEmpty, "handshake in progress")
        setup.gateway.send(Frames.tcp(flags: [.ack]), from: .inside)
        #expect(setup.requests().map(\.initiator) == [syn.tuple], "established by the initiator's ACK")

        // Picked up mid-stream with a FIN: established, but a FIN never asks; a later ACK does.
        let finFirst = Frames.tcp(sourcePort: 40001, flags: [.fin, .ack])
        setup.gateway.send(finFirst, from: .inside)
        #expect(setup.requests().isEmpty, "a FIN never asks")
        setup.gateway.send(Frames.tcp(sourcePort: 40001, flags: [.ack]), from: .inside)
        #expect(setup.requests().map(\.initiator) == [finFirst.tuple])
        // After a FIN the flow is closing: not offloadable any more.
        setup.gateway.send(Frames.tcp(flags: [.fin, .ack]), from: .inside)
        #expect(setup.gateway.flows.entry(syn.tuple)?.mayOffload == false)
    }

    @Test func deniedFlowsAskForADropOnlyWhileEventsAreOff() throws {
        let setup = try Setup()
        let denied = Frames.udp(port: 123)
        setup.gateway.send(denied, from: .inside)
        #expect(setup.requests().isEmpty, "events on: every denied packet is judged and reported")
        setup.events.store(false, ordering: .relaxed)
        setup.gateway.send(denied, from: .inside)
        setup.gateway.send(denied, from: .inside)
        #expect(setup.requests() == [OffloadRequest(initiator: denied.tuple, generation: 1, drop: true)],
                "once per flow and generation")
        setup.gateway.generation = 2
        setup.gateway.send(denied, from: .inside)
        #expect(setup.requests() == [OffloadRequest(initiator: denied.tuple, generation: 2, drop: true)])
        setup.gateway.send(Frames.echo(identifier: 99), from: .inside)  // allowed ICMP: no request
        setup.gateway.send(Frames.tcp(port: 8443, flags: [.syn]), from: .inside)  // denied TCP SYN
        #expect(setup.requests().map(\.drop) == [true])
        #expect(setup.gateway.count(.deniedPackets) == 5)
    }

    @Test func icmpDeniedAndSwitchedOffFlowsAreNotRequested() throws {
        let setup = try Setup()
        setup.gateway.send(Frames.echo(), from: .inside)
        setup.gateway.send(Frames.udp(port: 123), from: .inside)  // denied
        setup.enabled.store(false, ordering: .relaxed)
        setup.gateway.send(Frames.udp(sourcePort: 40002), from: .inside)
        #expect(setup.requests().isEmpty)
        #expect(setup.gateway.flows.entry(Frames.udp(sourcePort: 40002).tuple)?.offloadRequested == false)
    }

    @Test func aFullRingUnflagsTheFlowSoItAsksAgain() throws {
        let setup = try Setup(ringCapacity: 2)
        for port in 0..<3 { setup.gateway.send(Frames.udp(sourcePort: 41000 + UInt16(port)), from: .inside) }
        #expect(setup.gateway.count(.offloadRequestsDropped) == 1)
        let third = Frames.udp(sourcePort: 41002)
        #expect(setup.gateway.flows.entry(third.tuple)?.offloadRequested == false)
        _ = setup.requests()
        setup.gateway.send(third, from: .inside)
        #expect(setup.requests().map(\.initiator) == [third.tuple])
    }

    @Test func harvestedCountsAndLastSeenKeepAnOffloadedFlowAlive() throws {
        var timeouts = FlowTimeouts()
        timeouts.udp = 2
        let setup = try Setup(timeouts: timeouts)
        let flows = setup.gateway.flows
        let dns = Frames.udp()
        setup.gateway.send(dns, from: .inside, at: 0)
        let packets = flows.entry(dns.tuple)!.packets
        let bytes = flows.entry(dns.tuple)!.bytes
        // The program carried 10 packets of 100 bytes, the last one at 1.9 s.
        #expect(flows.absorbOffloaded(dns.tuple.reversed(), packets: 10, bytes: 1000, lastSeen: 1_900_000_000))
        #expect(flows.entry(dns.tuple)!.packets == packets + 10 && flows.entry(dns.tuple)!.bytes == bytes + 1000)
        var removed: [FiveTuple] = []
        #expect(flows.sweep(now: 3_000_000_000) { removed.append($0.initiatorTuple) } == 0,
                "3 s after its first packet, 1.1 s after the program's last one: alive")
        #expect(flows.sweep(now: 4_500_000_000) { removed.append($0.initiatorTuple) } == 1)
        #expect(removed == [dns.tuple], "the sweep names the offloaded flow it removed")
        #expect(!flows.absorbOffloaded(dns.tuple, packets: 1, bytes: 1, lastSeen: 1), "gone: its entries must go")
    }

    @Test func mapEntriesCarryBothDirectionsMACsAndEgress() {
        let tuple = Frames.udp().tuple
        guard case let (outKey, outValue, inKey, inValue)? = FlowOffload.entries(tuple, snapshot: Topology.snapshot())
        else {
            Issue.record("no entries")
            return
        }
        #expect(FlowOffload.tuple(outKey) == tuple && FlowOffload.tuple(inKey) == tuple.reversed())
        #expect(outValue.egress_ifindex == 2 && inValue?.egress_ifindex == 1)
        var outbound = outValue
        let outMACs = withUnsafeBytes(of: &outbound.dst_mac) { Array($0) }
            + withUnsafeBytes(of: &outbound.src_mac) { Array($0) }
        #expect(outMACs == [2, 0, 0, 0, 2, 0xFE, 2, 0, 0, 0, 2, 1], "to the router, from the outside interface")
        #expect(outValue.action == UInt8(SLUICE_FLOW_FORWARD) && outValue.packets == 0)
        #expect(FlowOffload.entries(tuple, snapshot: Topology.snapshot(routerResolved: false)) == nil,
                "no install before the next hop is resolved")
        // A client the gateway never sent to (one-way traffic): its own direction is offloaded,
        // its replies stay with the workers.
        let oneWay = FlowOffload.entries(tuple, snapshot: Topology.snapshot(clientResolved: false))
        #expect(oneWay != nil && oneWay?.3 == nil && oneWay?.1.egress_ifindex == 2)
    }
}

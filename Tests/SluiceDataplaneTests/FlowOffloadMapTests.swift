// The control-plane half of flow offload against the real BPF maps (root: the object is loaded,
// never attached, so no interface or namespace is touched): the generation map follows publish
// and pause, requests become one entry per direction with the judging generation, requests of
// an older generation are refused, a harvest moves counts into the flow and deletes the entries
// of a flow that is gone, and pausing empties the maps and clears every flow's flag.
// Skipped loudly when not root.

#if canImport(Glibc)
import Glibc
#endif
import CSluiceXDP
import SluicePacket
import SluicePolicy
import Testing
@testable import SluiceDataplane

@Suite(.serialized) struct FlowOffloadMapTests {
    static func entries(_ program: XDPProgram) -> [(sluice_flow_key, sluice_flow_value)] {
        var result: [(sluice_flow_key, sluice_flow_value)] = []
        program.forEachFlow { result.append(($0, $1)) }
        return result
    }

    @Test(.enabled(if: IntegrationEnvironment.canRun, "needs root and the BPF object; see stderr"))
    func installHarvestGenerationsAndPause() throws {
        let inside = try XDPProgram(offloadCapacity: 1024)
        let outside = try XDPProgram(offloadCapacity: 1024)
        let flows = FlowTable(FlowTableConfiguration(capacity: 1024, shardCount: 4), seed: 3)
        let offload = try FlowOffload(inside: inside, outside: outside, insideIndex: 1, outsideIndex: 1, flows: flows,
                                      workers: 1, ringCapacity: 16, configured: true, log: { _ in })
        #expect(inside.offloadGeneration() == 0 && !FlowOffloadMapTests.on(offload), "off until a policy")
        offload.policyWillPublish(generation: 7)
        #expect(inside.offloadGeneration() == 7 && outside.offloadGeneration() == 7)
        #expect(FlowOffloadMapTests.on(offload))

        // A worker opened and flagged a UDP flow under generation 7 and asked for it.
        let tuple = Frames.udp().tuple
        let outcome = flows.handle.track(tuple, side: .inside, tcpFlags: [], length: 100, now: 1, generation: 7,
                                         offload: true) { _ in FlowOffloadMapTests.allow }
        #expect(outcome.offload)
        let producer = offload.rings[0].producer
        #expect(producer.push(OffloadRequest(initiator: tuple, generation: 7)))
        offload.install(snapshot: Topology.snapshot())
        let insideEntries = FlowOffloadMapTests.entries(inside)
        let outsideEntries = FlowOffloadMapTests.entries(outside)
        #expect(insideEntries.count == 1 && outsideEntries.count == 1)
        #expect(insideEntries.first.map { FlowOffload.tuple($0.0) } == tuple)
        #expect(outsideEntries.first.map { FlowOffload.tuple($0.0) } == tuple.reversed())
        #expect(insideEntries.first?.1.generation == 7 && insideEntries.first?.1.egress_ifindex == 2)

        // The program counted 5 packets (500 IP bytes): a harvest adds them to the flow.
        var key = FlowOffload.key(tuple)
        var value = insideEntries[0].1
        value.packets = 5
        value.bytes = 570
        value.ip_bytes = 500
        value.last_seen_ns = 2_000_000_000
        #expect(bpf_map_update_elem(inside.flowMapFD, &key, &value, UInt64(BPF_EXIST)) == 0)
        offload.harvest()
        #expect(flows.entry(tuple)?.packets == 6 && flows.entry(tuple)?.bytes == 600)
        offload.harvest()
        #expect(flows.entry(tuple)?.packets == 6, "counted once")

        // A request of an older generation is refused and unflags its flow.
        #expect(producer.push(OffloadRequest(initiator: tuple, generation: 6)))
        offload.install(snapshot: Topology.snapshot())
        #expect(flows.entry(tuple)?.offloadRequested == false)
        #expect(offload.figures()["offload_refused"] == 1)

        // Pause: generation 0 at once, entries gone, flags cleared; resume: generation back.
        offload.setPaused(true)
        #expect(inside.offloadGeneration() == 0 && !FlowOffloadMapTests.on(offload))
        #expect(FlowOffloadMapTests.entries(inside).isEmpty && FlowOffloadMapTests.entries(outside).isEmpty)
        offload.setPaused(false)
        #expect(inside.offloadGeneration() == 7 && FlowOffloadMapTests.on(offload))

        // A flow that is gone (cut, expired) loses its entries at the next harvest.
        #expect(producer.push(OffloadRequest(initiator: tuple, generation: 7)))
        offload.install(snapshot: Topology.snapshot())
        #expect(FlowOffloadMapTests.entries(inside).count == 1)
        #expect(flows.sweep(now: 100_000_000_000) == 1, "idle 98 s > the UDP timeout")
        offload.harvest()
        #expect(FlowOffloadMapTests.entries(inside).isEmpty && FlowOffloadMapTests.entries(outside).isEmpty)

        // A denied flow (events off): one drop entry, inside only; it goes once idle past its timeout.
        let denied = Frames.udp(port: 123).tuple
        #expect(producer.push(OffloadRequest(initiator: denied, generation: 7, drop: true)))
        #expect(producer.push(OffloadRequest(initiator: denied, generation: 7, drop: true)))
        offload.install(snapshot: Topology.snapshot())
        let drops = FlowOffloadMapTests.entries(inside)
        #expect(drops.count == 1 && FlowOffloadMapTests.entries(outside).isEmpty)
        #expect(drops.first?.1.action == UInt8(SLUICE_FLOW_DROP) && drops.first?.1.generation == 7)
        offload.harvest()
        #expect(FlowOffloadMapTests.entries(inside).count == 1, "fresh: kept")
        var deniedKey = FlowOffload.key(denied)
        var deniedValue = drops[0].1
        deniedValue.packets = 3
        deniedValue.last_seen_ns = 1  // long ago
        #expect(bpf_map_update_elem(inside.flowMapFD, &deniedKey, &deniedValue, UInt64(BPF_EXIST)) == 0)
        offload.clearActivityForTests(denied)
        offload.harvest()
        #expect(FlowOffloadMapTests.entries(inside).isEmpty, "idle past the UDP timeout: removed")
    }

    @Test(.enabled(if: IntegrationEnvironment.canRun, "needs root and the BPF object; see stderr"))
    func noOffloadKeepsTheGenerationAtZero() throws {
        let inside = try XDPProgram(offloadCapacity: 64)
        let outside = try XDPProgram(offloadCapacity: 64)
        let offload = try FlowOffload(inside: inside, outside: outside, insideIndex: 1, outsideIndex: 1,
                                      flows: FlowTable(FlowTableConfiguration(capacity: 64, shardCount: 1)),
                                      workers: 1, ringCapacity: 4, configured: false, log: { _ in })
        offload.policyWillPublish(generation: 3)
        #expect(inside.offloadGeneration() == 0 && outside.offloadGeneration() == 0)
        #expect(!FlowOffloadMapTests.on(offload))
    }

    /// Whether workers may ask for installs (read outside #expect: the atomics' ordering
    /// argument must be spelled literally).
    static func on(_ offload: FlowOffload) -> Bool { offload.enabled.load(ordering: .relaxed) }

    static let allow = CompiledVerdict(verdict: .allow, decision: .allow, decidedBy: .rule, mode: .enforce, group: 0,
                                       rule: 0, findingCount: 0)
}

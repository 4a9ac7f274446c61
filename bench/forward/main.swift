// Worker cost per packet, without a kernel in the way: the PacketProcessor alone (first packet
// of a flow: policy lookup + flow insert; later packets: flow hit) and the whole worker loop
// (runQueueWorker) over in-memory rings fed by a generator thread, on ClassBench-like policies
// (fixed seed). Prints cycles per packet, packets per second and heap allocations per packet,
// which must be 0. The kernel's AF_XDP copy-mode cost (about 1,800 cycles per forwarded packet
// on veth, notes/afxdp-on-these-machines.md) comes on top. Run:
//   swift run -c release forward-bench [--rules 100,10000] [--packets 200000]
//   forward-bench hits [--rules 100,10000] [--flows 4096] [--rounds 200]   (the harness's flow-hit path)
//   forward-bench gateway --inside IF --outside IF --policy FILE [--queues N]   (bench/gateway-forward.sh)
import AllocCounter
import Atomics
import Foundation
import SluiceDataplane
import SluicePacket
import SluicePolicy
import SluicePolicyGen

func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

let arguments = CommandLine.arguments
let ruleCounts = arguments.firstIndex(of: "--rules")
    .map { arguments[$0 + 1].split(separator: ",").compactMap { Int($0) } }
    ?? [100, 10_000]
let packetCount = arguments.firstIndex(of: "--packets").flatMap { Int(arguments[$0 + 1]) } ?? 200_000

let insideMAC = MACAddress(0x02_00_00_00_01_01), outsideMAC = MACAddress(0x02_00_00_00_02_01)
let routerMAC = MACAddress(0x02_00_00_00_02_FE)
let router4: UInt128 = 0xC000_02FE, router6: UInt128 = 0xFD01 << 112 | 0xFE
let snapshot = ForwardingSnapshot(
    inside: .init(index: 1, mac: insideMAC, ipv4: 0x0A00_0001),
    outside: .init(index: 2, mac: outsideMAC, ipv4: 0xC000_0201),
    routes: [.init(family: .v4, prefix: 0, prefixLength: 0, gateway: router4, interfaceIndex: 2),
             .init(family: .v6, prefix: 0, prefixLength: 0, gateway: router6, interfaceIndex: 2)],
    neighbours: [.init(interfaceIndex: 2, family: .v4, address: router4, mac: routerMAC),
                 .init(interfaceIndex: 2, family: .v6, address: router6, mac: routerMAC)])

/// 64-byte-class frames (UDP/TCP, v4 and v6) for the generated packets, laid out back to back.
func frames(for queries: [PacketQuery]) -> [[UInt8]] {
    queries.compactMap { query -> [UInt8]? in
        guard query.proto == 6 || query.proto == 17 else { return nil }
        func value(_ address: IPAddress) -> UInt128 {
            switch address {
            case .v4(let v): return UInt128(v)
            case .v6(let v): return v
            }
        }
        let tuple = FiveTuple(family: query.src.isV4 ? .v4 : .v6, protocolNumber: query.proto, source: value(query.src),
                              destination: value(query.dst), sourcePort: query.srcPort, destinationPort: query.dstPort)
        return FrameBuilder(destinationMAC: insideMAC, sourceMAC: MACAddress(0x02_00_00_00_01_02), tuple: tuple,
                            tcpFlags: [.ack]).bytes(payload: [UInt8](repeating: 0, count: query.src.isV4 ? 18 : 0))
    }
}

final class Rig {
    let flows: FlowTable
    let events = SPSCRing<DataplaneEvent>(capacity: 1 << 16)
    let neighbours = SPSCRing<NeighbourRequest>(capacity: 16)
    let pending = PendingCounters()
    let processor: PacketProcessor<NoLearnedAddresses>
    /// Flow offload requests (on, as in `sluice run`): the first packet of each flow pushes one.
    let offloadRequests = SPSCRing<OffloadRequest>(capacity: 8192)
    let offloadEnabled = UnsafeAtomic<Bool>.create(true)

    init(capacity: Int) {
        flows = FlowTable(FlowTableConfiguration(capacity: capacity, shardCount: 64), seed: 1)
        processor = PacketProcessor(flows: flows.handle, learned: NoLearnedAddresses(), counters: pending,
                                    events: events.producer, neighbourRequests: neighbours.producer, worker: 0,
                                    offload: OffloadPort(requests: offloadRequests.producer, enabled: offloadEnabled))
    }

    deinit { offloadEnabled.destroy() }

    func drainEvents() {
        var consumer = events.consumer
        while consumer.pop() != nil {}
        var requests = offloadRequests.consumer
        while requests.pop() != nil {}
    }
}

/// Runs every frame through the processor once; returns (cycles per packet, allocations).
func pass(_ rig: Rig, _ frames: [[UInt8]], policy: CompiledPolicy, buffer: UnsafeMutableRawPointer)
    -> (Double, UInt64)
{
    let compiled = Unmanaged.passUnretained(policy)
    let table = Unmanaged.passUnretained(snapshot)
    var cycles: UInt64 = 0
    var allocations: UInt64 = 0
    var index = 0
    while index < frames.count {
        let end = min(index + 4096, frames.count)
        // Copy a chunk into place first (as a NIC would), then time the decisions alone.
        var offsets: [(Int, Int)] = []
        offsets.reserveCapacity(end - index)
        var cursor = 0
        for frame in frames[index..<end] {
            frame.withUnsafeBytes { (buffer + cursor).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            offsets.append((cursor, frame.count))
            cursor += 128
        }
        let allocationsBefore = alloc_counter_total()
        let start = alloc_counter_cycles()
        offsets.withUnsafeBufferPointer { list in
            for (offset, length) in list {
                _ = rig.processor.process(frame: buffer + offset, length: length, side: .inside, now: 1,
                                          policy: (1, compiled), forwarding: table)
            }
        }
        cycles += alloc_counter_cycles() - start
        allocations += alloc_counter_total() - allocationsBefore
        rig.drainEvents()
        index = end
    }
    return (Double(cycles) / Double(frames.count), allocations)
}

/// The flow-hit path as the harness (bench/run.sh) drives it: the generated policy with the
/// `bench` group last (as `nft-rules` writes it), `flows` 64-byte UDP flows from 198.18.0.0/16 to
/// the sink, the default flow table, no offload. Every round sends each flow's frame once; the
/// first round opens the flows. Prints cycles per packet (median and minimum of the rounds, the
/// minimum being the least disturbed on a shared machine); under callgrind, instructions per
/// packet are total/packets (deterministic, for comparing changes).
func hitPath(rules: Int, flowCount: Int, rounds: Int) {
    var generator = PolicyGenerator(seed: 42, profile: .classBench)
    var config = generator.policy(groups: max(1, rules / 100), rulesPerGroup: min(100, rules))
    config.sourceGroups.append(SourceGroupConfig(
        id: "bench", priority: nil,
        sources: SourcesConfig(cidrs: [IPPrefix(address: IPAddress("198.18.0.0")!, length: 16)!]),
        rules: [RuleConfig(id: "udp", action: .allow, match: RuleMatchConfig(proto: .udp))],
        defaultAction: nil, mode: nil))
    let policy = PolicyCompiler.compile(mode: .enforce, policy: config)
    let frameStride = 128
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: flowCount * frameStride, alignment: 64)
    defer { buffer.deallocate() }
    var lengths: [Int] = []
    for flow in 0..<flowCount {
        let tuple = FiveTuple(family: .v4, protocolNumber: 17, source: 0xC612_0000 | UInt128(flow & 0xFFFF),
                              destination: 0xC613_0002, sourcePort: UInt16(1024 + flow % 50_000), destinationPort: 9)
        let bytes = FrameBuilder(destinationMAC: insideMAC, sourceMAC: MACAddress(0x02_00_00_00_01_02), tuple: tuple,
                                 tcpFlags: []).bytes(payload: [UInt8](repeating: 0, count: 18))
        bytes.withUnsafeBytes { (buffer + flow * frameStride).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        lengths.append(bytes.count)
    }
    let flows = FlowTable(FlowTableConfiguration(), seed: 1)
    let events = SPSCRing<DataplaneEvent>(capacity: 1 << 16)
    let neighbours = SPSCRing<NeighbourRequest>(capacity: 16)
    let pending = PendingCounters()
    let processor = PacketProcessor(flows: flows.handle, learned: NoLearnedAddresses(), counters: pending,
                                    events: events.producer, neighbourRequests: neighbours.producer, worker: 0)
    let compiled = Unmanaged.passUnretained(policy)
    let table = Unmanaged.passUnretained(snapshot)
    let ttlWords = (0..<flowCount).map { (buffer + $0 * frameStride + 22).loadUnaligned(as: UInt32.self) }
    var perRound: [Double] = []
    perRound.reserveCapacity(rounds)
    let allocationsBefore = alloc_counter_total()
    lengths.withUnsafeBufferPointer { lengths in
        for round in 0...rounds {
            let start = alloc_counter_cycles()
            for flow in 0..<flowCount {
                let frame = buffer + flow * frameStride
                _ = processor.process(frame: frame, length: lengths[flow], side: .inside, now: 1,
                                      policy: (1, compiled), forwarding: table)
                // Undo the forwarding rewrite (TTL and checksum) so that every round sees the same frames.
                frame.storeBytes(of: ttlWords[flow], toByteOffset: 22, as: UInt32.self)
            }
            if round > 0 { perRound.append(Double(alloc_counter_cycles() - start) / Double(flowCount)) }
        }
    }
    let allocations = alloc_counter_total() - allocationsBefore
    let allowed = pending.slots[DataplaneCounter.allowedPackets.rawValue]
    perRound.sort()
    say(String(format: "hit path, %d rules, %d flows, %d rounds: %.0f cycles/packet median, %.0f minimum; "
        + "%d of %d packets allowed; %d allocations", rules, flowCount, rounds, perRound[perRound.count / 2],
        perRound[0], allowed, (rounds + 1) * flowCount, allocations))
}

if arguments.count > 1 && arguments[1] == "hits" {
    let flowCount = arguments.firstIndex(of: "--flows").flatMap { Int(arguments[$0 + 1]) } ?? 4096
    let rounds = arguments.firstIndex(of: "--rounds").flatMap { Int(arguments[$0 + 1]) } ?? 200
    for rules in ruleCounts { hitPath(rules: rules, flowCount: flowCount, rounds: rounds) }
    exit(0)
}

if arguments.count > 1 && arguments[1] == "gateway" {
    try await GatewayMode.run(arguments)
    exit(0)
}

say("forward-bench: \(packetCount) packets per rule set, cycles from the CPU's cycle counter")
say("rules   | first packet (lookup+insert) | flow hit | allocations/packet | allowed share")
let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096 * 128, alignment: 64)
for rules in ruleCounts {
    var generator = PolicyGenerator(seed: 7, profile: .classBench)
    var config = generator.policy(groups: max(1, rules / 100), rulesPerGroup: min(rules, 100))
    config.defaultPolicy = .allow
    let policy = PolicyCompiler.compile(mode: .enforce, policy: config)
    let packets = frames(for: generator.packets(for: config, count: packetCount))
    let rig = Rig(capacity: 1 << 21)
    let (first, firstAllocations) = pass(rig, packets, policy: policy, buffer: buffer)
    let (hit, hitAllocations) = pass(rig, packets, policy: policy, buffer: buffer)
    let allowed = Double(rig.pending.slots[DataplaneCounter.allowedPackets.rawValue]) / Double(2 * packets.count)
    say(String(format: "%7d | %28.0f | %8.0f | %18.4f | %.2f", rules, first, hit,
               Double(firstAllocations + hitAllocations) / Double(2 * packets.count), allowed))
}

// The worker loop over in-memory rings: a generator thread plays the kernel on the inside
// (fill → rx) and outside (tx → completion); one flow-hit-heavy traffic mix.
say("")
say("worker loop over in-memory rings (runQueueWorker), 10,000 rules, flows established:")
do {
    var generator = PolicyGenerator(seed: 7, profile: .classBench)
    var config = generator.policy(groups: 100, rulesPerGroup: 100)
    config.defaultPolicy = .allow
    let policy = PolicyCompiler.compile(mode: .enforce, policy: config)
    let packets = frames(for: generator.packets(for: config, count: 4096))
    let rig = Rig(capacity: 1 << 16)
    let bench = LoopBench(rig: rig, policy: policy, frames: packets)
    let result = bench.run(packets: 4_000_000)
    say(String(format: "  %.2f Mpps through the worker loop, %.0f worker cycles/packet (incl. idle spins), "
        + "%.4f allocations/packet", result.mpps, result.cyclesPerPacket, result.allocationsPerPacket))
}

// Where allocations come from, if any: each stage alone.
if arguments.contains("--probe") {
    var generator = PolicyGenerator(seed: 7, profile: .classBench)
    var config = generator.policy(groups: 1, rulesPerGroup: 100)
    config.defaultPolicy = .allow
    let policy = PolicyCompiler.compile(mode: .enforce, policy: config)
    let packets = frames(for: generator.packets(for: config, count: 1000))
    let frame = packets[0]
    frame.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    let view = UnsafeRawBufferPointer(start: buffer, count: frame.count)
    var before = alloc_counter_total()
    var sink = 0
    for _ in 0..<1000 { if let parsed = try? PacketParser.parse(view) { sink &+= parsed.l4Offset } }
    say("parse: \(alloc_counter_total() - before) allocations / 1000")
    let query = PacketQuery(src: .v4(0x0A000002), dst: .v4(0x0A000003), proto: 17, srcPort: 1, dstPort: 2)
    before = alloc_counter_total()
    for _ in 0..<1000 { sink &+= Int(policy.lookup(query, learned: NoLearnedAddresses()).group) }
    say("lookup: \(alloc_counter_total() - before) allocations / 1000")
    let rig = Rig(capacity: 1024)
    let tuple = FiveTuple(family: .v4, protocolNumber: 17, source: 1, destination: 2, sourcePort: 3, destinationPort: 4)
    before = alloc_counter_total()
    for _ in 0..<1000 {
        let outcome = rig.flows.handle.track(
            tuple, side: .inside, tcpFlags: [], length: 64, now: 1, generation: 1
        ) { _ in
            policy.lookup(query, learned: NoLearnedAddresses())
        }
        sink &+= Int(outcome.closed)
    }
    say("track: \(alloc_counter_total() - before) allocations / 1000")
    let compiled = Unmanaged.passUnretained(policy)
    before = alloc_counter_total()
    for _ in 0..<1000 {
        _ = rig.processor.process(frame: buffer, length: frame.count, side: .inside, now: 1, policy: (1, compiled),
                                  forwarding: nil)
    }
    say("process (no forwarding): \(alloc_counter_total() - before) allocations / 1000")
    let table = Unmanaged.passUnretained(snapshot)
    before = alloc_counter_total()
    for _ in 0..<1000 {
        frame.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        _ = rig.processor.process(frame: buffer, length: frame.count, side: .inside, now: 1, policy: (1, compiled),
                                  forwarding: table)
    }
    say("process (forwarding): \(alloc_counter_total() - before) allocations / 1000 \(sink)")
}
buffer.deallocate()

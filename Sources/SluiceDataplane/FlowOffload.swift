// XDP flow offload, the user-space half (issue 6; the program's half is in bpf/sluice_xdp.c).
// Workers judge a flow; once it `mayOffload` they push one request into their own SPSC ring
// (no system call on the hot path). The dataplane's maintenance task drains the rings every
// tick (20 ms) and installs both directions of each flow with one batched
// bpf_map_update_batch per program instance:
//
//   worker ──OffloadRequest──► ring ──► FlowOffload.install ──► inside program:  initiator → responder
//                                         (MACs from the         outside program: responder → initiator
//                                          forwarding snapshot)
//
// Every second `harvest` reads both maps in batches, adds what the program counted to the flow
// entries (packets, bytes, last seen: offloaded flows live as long as traffic flows through
// XDP) and deletes entries whose flow is gone (cut, closed, swept). Stats read the program's
// per-CPU counters directly (Dataplane.counters), so they are never late.
//
// Generations: an entry carries the low 32 bits of the policy generation that judged it; the
// program uses it only while it equals the value in `sluice_offload_gen`, which `publish`
// moves forward before the workers see the new policy: every older entry goes back to the
// workers at once, who judge it again (and cut it, or ask for a fresh install). 0 in the map
// turns offload off (no flow lookup at all): `--no-offload`, and while paused for a capture.
//
// Control plane only. Thread safety: every method takes `lock` (maintenance task and API
// callers); the rings are popped only under it.

#if canImport(Glibc)
import Glibc
#endif
import Atomics
import CSluiceXDP
import Foundation
import SluicePacket

/// A worker's request to hand a judged flow's verdict to the XDP program. A plain value.
public struct OffloadRequest: Sendable, Equatable {
    /// The initiator's tuple (inside → outside).
    public var initiator: FiveTuple
    /// Low 32 bits of the policy generation that judged the flow.
    public var generation: UInt32
    /// A denied flow: the program drops its packets (only while events are off, see
    /// `OffloadPort.denyCache`); false: an allowed flow, forwarded.
    public var drop: Bool = false
}

/// What a worker needs for offload: its request ring and the on/off switch (raw views, no
/// reference counting; copied into the PacketProcessor).
public struct OffloadPort: @unchecked Sendable {
    /// The worker's request ring.
    public var requests: SPSCRing<OffloadRequest>.Producer
    /// Whether workers may request installs now (off with `--no-offload` and while paused).
    public var enabled: UnsafeAtomic<Bool>
    /// Denied flows this worker asked to drop lately (`denyCacheSize` hashes): a denied flow has
    /// no flow entry to carry a flag, and without it every packet until the install would ask.
    /// nil: denied flows are never offloaded.
    public var denyCache: UnsafeMutablePointer<UInt64>?

    /// Slots of a deny cache (a power of two).
    public static let denyCacheSize = 1024

    public init(requests: SPSCRing<OffloadRequest>.Producer, enabled: UnsafeAtomic<Bool>,
                denyCache: UnsafeMutablePointer<UInt64>? = nil) {
        self.requests = requests
        self.enabled = enabled
        self.denyCache = denyCache
    }

    /// Whether the denied flow with `hash` (already mixed with the generation) should be asked
    /// for now: false when this worker asked for it lately. Hot path.
    @inline(__always)
    func claimDeny(_ hash: UInt64) -> Bool {
        guard let denyCache else { return false }
        let slot = denyCache + Int(truncatingIfNeeded: hash & UInt64(OffloadPort.denyCacheSize - 1))
        if slot.pointee == hash { return false }
        slot.pointee = hash
        return true
    }
}

/// The control-plane side of flow offload for one running dataplane.
final class FlowOffload: @unchecked Sendable {
    /// Per direction: what the program had counted at the last harvest.
    struct Baseline {
        var packets: UInt64 = 0
        var bytes: UInt64 = 0
        var ipBytes: UInt64 = 0
    }

    /// An installed flow: baselines of its inside (initiator → responder) and outside entries.
    /// A denied flow (`drop`) has only the inside entry and no flow-table entry: it goes when
    /// idle past its protocol's timeout (`lastActive`, monotonic ns: install or last packet).
    struct Installed {
        var inside = Baseline()
        var outside = Baseline()
        var drop = false
        var lastActive: UInt64 = 0
    }

    let inside: XDPProgram
    let outside: XDPProgram
    let flows: FlowTable
    let rings: [SPSCRing<OffloadRequest>]
    /// Read by the workers (OffloadPort.enabled).
    let enabled: UnsafeAtomic<Bool>
    private let configured: Bool
    private let lock = NSLock()
    private var installed: [FiveTuple: Installed] = [:]
    /// One deny cache per worker (OffloadPort.denyCache).
    private let denyCaches: [UnsafeMutablePointer<UInt64>]
    private var generation: UInt32 = 0
    private var paused = false
    private let log: @Sendable (String) -> Void

    /// Figures for stats (`offload_*`), guarded by `lock`.
    private(set) var installs: UInt64 = 0
    private(set) var refused: UInt64 = 0
    private(set) var removals: UInt64 = 0

    /// Offload between `inside` and `outside` programs (attached to those interfaces), one
    /// request ring per worker. `configured` false: everything stays off (`--no-offload`).
    init(inside: XDPProgram, outside: XDPProgram, insideIndex: Int32, outsideIndex: Int32, flows: FlowTable,
         workers: Int, ringCapacity: Int, configured: Bool, log: @escaping @Sendable (String) -> Void) throws {
        self.inside = inside
        self.outside = outside
        self.flows = flows
        self.configured = configured
        self.log = log
        rings = (0..<workers).map { _ in SPSCRing(capacity: ringCapacity) }
        denyCaches = (0..<workers).map { _ in
            let cache = UnsafeMutablePointer<UInt64>.allocate(capacity: OffloadPort.denyCacheSize)
            cache.initialize(repeating: 0, count: OffloadPort.denyCacheSize)
            return cache
        }
        enabled = .create(false)
        try inside.addEgress(interfaceIndex: outsideIndex)
        try outside.addEgress(interfaceIndex: insideIndex)
        try inside.setOffloadGeneration(0)
        try outside.setOffloadGeneration(0)
    }

    deinit {
        enabled.destroy()
        for cache in denyCaches { cache.deallocate() }
    }

    /// Worker `worker`'s view.
    func port(worker: Int) -> OffloadPort {
        OffloadPort(requests: rings[worker].producer, enabled: enabled, denyCache: denyCaches[worker])
    }

    /// Whether offload is on now (configured and not paused).
    var active: Bool { lock.withLock { configured && !paused } }

    /// A new policy generation is about to be published: entries of older ones stop being
    /// used now. Call before the workers can see the new policy.
    func policyWillPublish(generation: UInt64) {
        lock.withLock {
            self.generation = UInt32(truncatingIfNeeded: generation)
            applyGenerationLocked()
        }
    }

    private func applyGenerationLocked() {
        let on = configured && !paused && generation != 0
        let value = on ? generation : 0
        do {
            try inside.setOffloadGeneration(value)
            try outside.setOffloadGeneration(value)
        } catch {
            log("flow offload: setting the generation failed: \(error)")
        }
        enabled.store(on, ordering: .releasing)
    }

    /// Pauses offload (a capture wants to see every packet) or resumes it. Pausing takes effect
    /// for the program at once; offloaded entries are harvested and deleted, and flows ask
    /// again for an install after the resume.
    func setPaused(_ paused: Bool) {
        lock.withLock {
            guard paused != self.paused else { return }
            self.paused = paused
            if paused {
                applyGenerationLocked()  // 0 in the map: the program stops using every entry now
                harvestLocked()
                for (initiator, _) in installed { removeEntriesLocked(initiator) }
                installed.removeAll()
                drainLocked { _ in }
                flows.clearAllOffloadRequests()
            } else {
                // Requests pushed just before the pause may have left flags behind.
                flows.clearAllOffloadRequests()
                applyGenerationLocked()
            }
        }
    }

    /// Installs what the workers asked for, with MACs from `snapshot`. Requests that cannot be
    /// installed (offload off, an older generation, a neighbour not known yet) clear the flow's
    /// flag, so a later packet asks again.
    func install(snapshot: ForwardingSnapshot?) {
        lock.withLock {
            var batch: [(FiveTuple, sluice_flow_key, sluice_flow_value, sluice_flow_key, sluice_flow_value?)] = []
            var drops: [FiveTuple: sluice_flow_value] = [:]
            drainLocked { request in
                if request.drop {
                    guard configured && !paused && request.generation == generation else {
                        refused += 1
                        return
                    }
                    var value = sluice_flow_value()
                    value.action = UInt8(SLUICE_FLOW_DROP)
                    value.generation = request.generation
                    drops[request.initiator] = value  // several workers may ask for one flow
                    return
                }
                guard configured && !paused && request.generation == generation, let snapshot,
                      let forward = FlowOffload.entries(request.initiator, snapshot: snapshot)
                else {
                    refused += 1
                    flows.clearOffloadRequest(request.initiator)
                    return
                }
                var (outboundValue, inboundValue) = (forward.1, forward.3)
                outboundValue.generation = request.generation
                inboundValue?.generation = request.generation
                batch.append((request.initiator, forward.0, outboundValue, forward.2, inboundValue))
            }
            installDropsLocked(drops)
            guard !batch.isEmpty else { return }
            // Re-installs (a flow judged again) reset the program's counters: harvest first.
            if batch.contains(where: { installed[$0.0] != nil }) { harvestLocked() }
            var insideKeys = batch.map { $0.1 }
            var insideValues = batch.map { $0.2 }
            let inbound = batch.filter { $0.4 != nil }
            var outsideKeys = inbound.map { $0.3 }
            var outsideValues = inbound.map { $0.4! }
            do {
                try inside.installFlows(&insideKeys, &insideValues, count: batch.count)
                if !inbound.isEmpty { try outside.installFlows(&outsideKeys, &outsideValues, count: inbound.count) }
                for item in batch { installed[item.0] = Installed() }
                installs += UInt64(batch.count)
            } catch {
                log("flow offload: install of \(batch.count) flows failed: \(error)")
                for item in batch {
                    removeEntriesLocked(item.0)
                    flows.clearOffloadRequest(item.0)
                }
                refused += UInt64(batch.count)
            }
        }
    }

    /// Installs drop entries for denied flows (inside map only: they start inside).
    private func installDropsLocked(_ drops: [FiveTuple: sluice_flow_value]) {
        guard !drops.isEmpty else { return }
        if drops.keys.contains(where: { installed[$0] != nil }) { harvestLocked() }
        var keys = drops.keys.map { FlowOffload.key($0) }
        var values = Array(drops.values)
        do {
            try inside.installFlows(&keys, &values, count: keys.count)
            let now = monotonicNanoseconds()
            for initiator in drops.keys {
                if let old = installed[initiator], !old.drop {
                    outside.removeFlow(FlowOffload.key(initiator.reversed()))  // was allowed, now denied
                }
                installed[initiator] = Installed(drop: true, lastActive: now)
            }
            installs += UInt64(keys.count)
        } catch {
            log("flow offload: install of \(keys.count) drop entries failed: \(error)")
            refused += UInt64(keys.count)
        }
    }

    /// Pops every queued request. Call with `lock` held (the rings' one consumer).
    private func drainLocked(_ body: (OffloadRequest) -> Void) {
        for ring in rings {
            var consumer = ring.consumer
            while let request = consumer.pop() { body(request) }
        }
    }

    /// The two map entries of the flow of `initiator`: arriving inside (leaving outside) and
    /// arriving outside (leaving inside); nil when a next hop or its MAC is not known.
    /// The two map entries of a flow: outbound (inside map) and inbound (outside map). The
    /// inbound one is nil when the initiator's next hop has no neighbour entry yet (a host that
    /// has only sent, never been sent to: one-way traffic, or a client whose ARP the gateway
    /// never needed): the flow's own direction is offloaded anyway and its replies, if any, keep
    /// going through the workers, which resolve the neighbour as for any flow.
    static func entries(_ initiator: FiveTuple, snapshot: ForwardingSnapshot)
        -> (sluice_flow_key, sluice_flow_value, sluice_flow_key, sluice_flow_value?)?
    {
        guard let outbound = value(towards: initiator.destination, family: initiator.family,
                                   egress: snapshot.outside, snapshot: snapshot)
        else { return nil }
        let inbound = value(towards: initiator.source, family: initiator.family, egress: snapshot.inside,
                            snapshot: snapshot)
        return (key(initiator), outbound, key(initiator.reversed()), inbound)
    }

    private static func value(towards destination: UInt128, family: IPFamily, egress: ForwardingSnapshot.Interface,
                              snapshot: ForwardingSnapshot) -> sluice_flow_value? {
        guard let hop = snapshot.nextHop(family: family, destination: destination, interfaceIndex: egress.index),
              let mac = snapshot.neighbourMAC(interfaceIndex: egress.index, family: family, address: hop)
        else { return nil }
        var value = sluice_flow_value()
        value.action = UInt8(SLUICE_FLOW_FORWARD)
        value.egress_ifindex = UInt32(bitPattern: egress.index)
        withUnsafeMutableBytes(of: &value.dst_mac) { write(mac, to: $0) }
        withUnsafeMutableBytes(of: &value.src_mac) { write(egress.mac, to: $0) }
        return value
    }

    private static func write(_ mac: MACAddress, to bytes: UnsafeMutableRawBufferPointer) {
        for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: mac.value >> (40 - 8 * UInt64(index))) }
    }

    /// The map key of packets carrying `tuple` (network byte order, zeroed padding).
    static func key(_ tuple: FiveTuple) -> sluice_flow_key {
        var key = sluice_flow_key()
        key.family = UInt8(tuple.family == .v4 ? SLUICE_FAMILY_V4 : SLUICE_FAMILY_V6)
        key.proto = tuple.protocolNumber
        key.sport = tuple.sourcePort.bigEndian
        key.dport = tuple.destinationPort.bigEndian
        withUnsafeMutableBytes(of: &key.saddr) { write(tuple.source, family: tuple.family, to: $0) }
        withUnsafeMutableBytes(of: &key.daddr) { write(tuple.destination, family: tuple.family, to: $0) }
        return key
    }

    /// The tuple of a map key (inverse of `key`).
    static func tuple(_ key: sluice_flow_key) -> FiveTuple {
        var key = key
        let family: IPFamily = key.family == UInt8(SLUICE_FAMILY_V4) ? .v4 : .v6
        let source = withUnsafeBytes(of: &key.saddr) { read($0, family: family) }
        let destination = withUnsafeBytes(of: &key.daddr) { read($0, family: family) }
        return FiveTuple(family: family, protocolNumber: key.proto, source: source, destination: destination,
                         sourcePort: UInt16(bigEndian: key.sport), destinationPort: UInt16(bigEndian: key.dport))
    }

    private static func write(_ address: UInt128, family: IPFamily, to bytes: UnsafeMutableRawBufferPointer) {
        let count = family == .v4 ? 4 : 16
        for index in 0..<count {
            bytes[index] = UInt8(truncatingIfNeeded: address >> (8 * UInt128(count - 1 - index)))
        }
    }

    private static func read(_ bytes: UnsafeRawBufferPointer, family: IPFamily) -> UInt128 {
        let count = family == .v4 ? 4 : 16
        var address: UInt128 = 0
        for index in 0..<count { address = address << 8 | UInt128(bytes[index]) }
        return address
    }

    /// Reads both maps and adds what the program counted to the flows (packets, bytes, last
    /// seen); deletes entries whose flow is gone; forgets flows whose entries the LRU evicted
    /// (they ask again).
    func harvest() { lock.withLock { harvestLocked() } }

    private func harvestLocked() {
        guard !installed.isEmpty else { return }
        var delta: [FiveTuple: (packets: UInt64, ipBytes: UInt64, lastSeen: UInt64)] = [:]
        for (program, arrivesInside) in [(inside, true), (outside, false)] {
            program.forEachFlow { key, value in
                let tuple = FlowOffload.tuple(key)
                let initiator = arrivesInside ? tuple : tuple.reversed()
                guard var record = installed[initiator] else {
                    program.removeFlow(key)  // not ours (any more)
                    return
                }
                var base = arrivesInside ? record.inside : record.outside
                var sum = delta[initiator] ?? (0, 0, 0)
                // A re-install resets the program's counters below the baseline: count from 0.
                if value.packets < base.packets { base = Baseline() }
                sum.packets += value.packets - base.packets
                sum.ipBytes += value.ip_bytes &- base.ipBytes
                sum.lastSeen = max(sum.lastSeen, value.last_seen_ns)
                base = Baseline(packets: value.packets, bytes: value.bytes, ipBytes: value.ip_bytes)
                if arrivesInside { record.inside = base } else { record.outside = base }
                installed[initiator] = record
                delta[initiator] = sum
            }
        }
        let now = monotonicNanoseconds()
        for (initiator, record) in installed {
            guard let sum = delta[initiator] else {
                // Both entries evicted (LRU): the flow goes back to the workers and asks again.
                installed[initiator] = nil
                if !record.drop { flows.clearOffloadRequest(initiator) }
                continue
            }
            if record.drop {
                // A denied flow: no flow entry; it goes when idle past its protocol's timeout.
                let active = max(record.lastActive, sum.lastSeen)
                installed[initiator]?.lastActive = active
                if now > active && now - active > dropTimeout(initiator) {
                    removeEntriesLocked(initiator)
                    installed[initiator] = nil
                }
                continue
            }
            if !flows.absorbOffloaded(initiator, packets: sum.packets, bytes: sum.ipBytes, lastSeen: sum.lastSeen) {
                removeEntriesLocked(initiator)
                installed[initiator] = nil
            }
        }
    }

    /// How long a denied flow's drop entry stays without packets: as long as the flow would
    /// stay in the flow table (UDP timeout, TCP opening timeout).
    private func dropTimeout(_ initiator: FiveTuple) -> UInt64 {
        let timeouts = flows.configuration.timeouts
        let seconds = initiator.protocolNumber == IPProtocolNumber.tcp ? timeouts.tcpOpening : timeouts.udp
        return UInt64(seconds * 1e9)
    }

    /// Harvests, then sweeps idle flows from the flow table and deletes the entries of the
    /// offloaded ones it removed.
    func sweep(now: UInt64) {
        lock.withLock {
            harvestLocked()
            var removed: [FiveTuple] = []
            flows.sweep(now: now) { removed.append($0.initiatorTuple) }
            for initiator in removed where installed[initiator] != nil {
                removeEntriesLocked(initiator)
                installed[initiator] = nil
            }
        }
    }

    private func removeEntriesLocked(_ initiator: FiveTuple) {
        inside.removeFlow(FlowOffload.key(initiator))
        outside.removeFlow(FlowOffload.key(initiator.reversed()))
        removals += 1
    }

    /// Forgets when the entry of `initiator` was installed (tests: make a drop entry look idle).
    func clearActivityForTests(_ initiator: FiveTuple) {
        lock.withLock { installed[initiator]?.lastActive = 0 }
    }

    /// Flows installed now (as far as the last harvest knows).
    var installedCount: Int { lock.withLock { installed.count } }

    /// Stats figures.
    func figures() -> [String: UInt64] {
        lock.withLock {
            ["offload_flows": UInt64(installed.count), "offload_installs": installs, "offload_refused": refused,
             "offload_removals": removals]
        }
    }
}

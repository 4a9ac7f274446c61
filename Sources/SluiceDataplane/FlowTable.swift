// The flow table every worker shares: a fixed number of shards, each a fixed-capacity open
// addressing hash table (linear probing, backward-shift deletion, load factor at most 1/2)
// behind its own spin lock. A key is direction-free (FlowKey), so the reply of a flow finds it
// from any queue of the other interface.
//
//   FiveTuple ─canonical─► FlowKey ─seeded hash─► shard (high bits) ─► slot (low bits), probe →
//
// Memory is allocated once at start and never grows: `capacity` flows at most, split evenly
// over the shards; a shard that is full refuses new flows (counted) while existing ones keep
// working. Entries record the policy generation that judged them, so a newer policy re-judges
// a flow at its next packet and cuts it when it now denies. Idle flows are removed when a
// packet finds them expired and by `sweep`, which the control plane runs every second.
//
// Hot path: one lock/unlock of one shard per packet; no allocation, no ARC (all state is
// behind raw pointers held by value in `FlowTable.Handle`).

import Atomics
import SluicePacket
import SluicePolicy

#if canImport(Glibc)
import Glibc
#endif

/// One flow: exactly one 64-byte cache line (the key's tail padding holds the flags and TCP
/// state; times are 32-bit ticks). Lives in a shard's slot array; read and written only under
/// that shard's lock.
public struct FlowEntry: Sendable, Equatable {
    /// The flow's direction-free key.
    public var key: FlowKey
    /// Bit 0: slot in use; bit 1: the initiator (always an inside host) is the key's low end;
    /// bit 2: TLS pending (the verdict waits for the handshake, docs/design/tls-pending.md);
    /// bit 3: its verdict was handed to the XDP program (flow offload requested).
    var flags: UInt8
    /// TCP phase (`.none` for other protocols).
    public var tcpState: TCPFlowState
    /// The low 32 bits of the policy generation whose verdict this flow carries (compared for
    /// equality only).
    public var generation: UInt32
    /// Monotonic time of the last packet in ticks of 2^20 ns (≈ 1 ms; wraps after ≈ 52 days,
    /// far beyond any idle timeout).
    var lastSeenTicks: UInt32
    /// Packets in both directions.
    public var packets: UInt32
    /// Document indexes of the group and rule that allowed it (-1: none, a default, or an index
    /// beyond Int16).
    public var group: Int16
    public var rule: Int16
    /// Bytes in both directions.
    public var bytes: UInt64

    static let usedFlag: UInt8 = 1
    static let initiatorIsLowFlag: UInt8 = 2
    static let tlsPendingFlag: UInt8 = 4
    static let offloadFlag: UInt8 = 8

    /// Whether the flow waits for its TLS handshake to be judged: its packets take the worker's
    /// TLS path and it must not be offloaded until the decision.
    public var isTLSPending: Bool { flags & FlowEntry.tlsPendingFlag != 0 }

    /// Whether the flow's verdict was handed to the XDP program (an install was requested;
    /// cleared when it is judged again, or when the entry could not be installed or vanished).
    public var offloadRequested: Bool { flags & FlowEntry.offloadFlag != 0 }

    /// THE place that says whether a flow may be offloaded to the XDP program, i.e. whether
    /// nothing more about it needs a worker's inspection: TCP once established (SYN, FIN and
    /// RST still reach the workers: the program punts them), UDP from its first allowed packet;
    /// never ICMP (replies and errors need the workers' matching). Not checked here: wiretap
    /// capture (a dataplane-wide switch, `Dataplane.setOffloadPaused`). A TLS decision pending
    /// keeps the flow with the workers: the flag is set when the flow is judged (at its SYN), so
    /// no packet finds the flow eligible before the handshake was decided; an inspection state
    /// added later must work the same way, since XDP shows the workers no later data packet.
    @inline(__always)
    public var mayOffload: Bool {
        if isTLSPending { return false }
        switch key.protocolNumber {
        case IPProtocolNumber.udp: return true
        case IPProtocolNumber.tcp: return tcpState == .established
        default: return false
        }
    }

    /// Whether the initiator is the key's low endpoint.
    public var initiatorIsLow: Bool { flags & FlowEntry.initiatorIsLowFlag != 0 }

    /// The initiator's tuple (inside → outside).
    public var initiatorTuple: FiveTuple { key.tuple(fromLow: initiatorIsLow) }

    /// Nanoseconds → ticks.
    @inline(__always)
    static func ticks(_ nanoseconds: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: nanoseconds >> 20) }

    @inline(__always)
    static func index(_ value: Int32) -> Int16 { Int16(exactly: value) ?? -1 }
}

/// What `FlowTable.track` decided for one packet.
public enum FlowDisposition: UInt8, Sendable {
    /// Belongs to an allowed flow (existing or just opened): forward it.
    case forward
    /// A new flow the policy denies.
    case denied
    /// An existing flow that a newer policy denies: it was removed (cut).
    case cut
    /// From the outside, or in the wrong direction, with no flow: unsolicited.
    case noFlow
    /// A new, allowed flow that did not fit (shard full): refused.
    case tableFull
}

/// The result of tracking one packet. A plain value, built on the stack.
public struct FlowOutcome: Sendable {
    public var disposition: FlowDisposition
    /// Whether the policy was consulted (then `verdict` holds its answer, findings included).
    public var judged: Bool
    public var verdict: CompiledVerdict
    /// Whether a flow was opened.
    public var opened: Bool
    /// Flows removed on the way (expired entry found, flow cut).
    public var closed: UInt8
    /// Whether the flow (forwarded) is TLS pending: the packet must go through the TLS inspector
    /// before it may be forwarded, and the flow must not be offloaded yet.
    public var tlsPending: Bool = false
    /// Whether the flow just became eligible for offload (`FlowEntry.mayOffload`, offload on,
    /// not requested before; the flag is now set): the caller asks for the install.
    public var offload: Bool = false
}

/// Sizes and timeouts of a flow table.
public struct FlowTableConfiguration: Sendable, Equatable {
    /// Most flows held at once (split evenly over the shards).
    public var capacity: Int = 262_144
    /// Number of shards (a power of two, at most `capacity`). More shards, less lock contention.
    public var shardCount: Int = 64
    /// Idle timeouts.
    public var timeouts = FlowTimeouts()

    /// Defaults: 262,144 flows in 64 shards.
    public init(capacity: Int = 262_144, shardCount: Int = 64, timeouts: FlowTimeouts = FlowTimeouts()) {
        self.capacity = capacity
        self.shardCount = shardCount
        self.timeouts = timeouts
    }
}

/// Idle timeouts in ticks (FlowEntry.ticks), resolved once so the hot path does no floating point.
struct ResolvedTimeouts {
    var tcp: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32)
    var udp: UInt32
    var icmp: UInt32

    init(_ timeouts: FlowTimeouts) {
        func ticks(_ protocolNumber: UInt8, _ state: TCPFlowState) -> UInt32 {
            UInt32(clamping: timeouts.nanoseconds(protocolNumber: protocolNumber, state: state) >> 20)
        }
        let tcpNumber = IPProtocolNumber.tcp
        tcp = (ticks(tcpNumber, .none), ticks(tcpNumber, .synSent), ticks(tcpNumber, .synReceived),
               ticks(tcpNumber, .established), ticks(tcpNumber, .finFromInitiator), ticks(tcpNumber, .finFromResponder),
               ticks(tcpNumber, .closing), ticks(tcpNumber, .closed))
        udp = ticks(IPProtocolNumber.udp, .none)
        icmp = ticks(IPProtocolNumber.icmp, .none)
    }

    @inline(__always)
    func idleLimit(_ entry: UnsafeMutablePointer<FlowEntry>) -> UInt32 {
        switch entry.pointee.key.protocolNumber {
        case IPProtocolNumber.tcp:
            switch entry.pointee.tcpState {
            case .none: return tcp.0
            case .synSent: return tcp.1
            case .synReceived: return tcp.2
            case .established: return tcp.3
            case .finFromInitiator: return tcp.4
            case .finFromResponder: return tcp.5
            case .closing: return tcp.6
            case .closed: return tcp.7
            }
        case IPProtocolNumber.icmp, IPProtocolNumber.icmpv6: return icmp
        default: return udp
        }
    }
}

/// The shared flow table. Created by the control plane before the workers start and freed
/// after they stopped; workers use it through `handle` from any worker thread.
public final class FlowTable: @unchecked Sendable {
    /// The configuration it was built with (shard count rounded up).
    public let configuration: FlowTableConfiguration
    /// The raw-pointer view the workers (and the methods below) use.
    public let handle: Handle

    /// Allocates every shard. `seed` fixes the hash (tests); nil picks a random one.
    public init(_ configuration: FlowTableConfiguration, seed: UInt64? = nil) {
        precondition(configuration.capacity > 0 && configuration.shardCount > 0, "flow table must not be empty")
        var configuration = configuration
        // A power of two, and no more shards than flows (each shard holds at least one).
        var shards = 1
        while shards < configuration.shardCount && shards * 2 <= configuration.capacity { shards <<= 1 }
        configuration.shardCount = shards
        self.configuration = configuration
        let perShard = (configuration.capacity + shards - 1) / shards
        var slots = 2
        while slots < perShard * 2 { slots <<= 1 }
        handle = Handle(shardCount: shards, slotsPerShard: slots, limitPerShard: perShard,
                        timeouts: ResolvedTimeouts(configuration.timeouts),
                        seed: seed ?? UInt64.random(in: 1...UInt64.max))
    }

    deinit { handle.deallocate() }

    /// Flows held now (takes every shard lock in turn; control plane).
    public var count: Int {
        var total = 0
        for shard in 0..<handle.shardCount {
            handle.lock(shard)
            total += handle.countPointer(shard).pointee
            handle.unlock(shard)
        }
        return total
    }

    /// Flows removed by `sweep` so far (expired while idle).
    public var expiredBySweep: UInt64 { handle.sweptCounter.load(ordering: .relaxed) }

    /// Removes every flow idle past its timeout; returns how many. Control plane, periodically.
    /// `removedOffloaded` gets each removed flow whose verdict was offloaded (under the shard
    /// lock: keep it short), so its XDP entries can be deleted too.
    @discardableResult
    public func sweep(now: UInt64, removedOffloaded: (FlowEntry) -> Void = { _ in }) -> Int {
        var removed = 0
        for shard in 0..<handle.shardCount {
            handle.lock(shard)
            var slot = 0
            while slot < handle.slotsPerShard {
                let entry = handle.entry(shard, slot)
                if handle.occupied(shard, slot) && handle.expired(entry, now: now) {
                    if entry.pointee.offloadRequested { removedOffloaded(entry.pointee) }
                    handle.remove(shard, slot)
                    removed += 1
                    continue  // backward shift may have moved a later entry into this slot
                }
                slot += 1
            }
            handle.unlock(shard)
        }
        handle.sweptCounter.wrappingIncrement(by: UInt64(removed), ordering: .relaxed)
        return removed
    }

    /// Adds what the XDP program counted for the flow of `initiator` (the initiator's tuple)
    /// since the last call, and moves its last-seen time forward to `lastSeen` (monotonic ns).
    /// Returns false when the flow is gone or no longer offloaded (then its XDP entries should
    /// go). Control plane (flow-offload harvest).
    public func absorbOffloaded(_ initiator: FiveTuple, packets: UInt64, bytes: UInt64, lastSeen: UInt64) -> Bool {
        handle.withFlow(initiator) { flow in
            guard let flow, flow.pointee.offloadRequested else { return false }
            flow.pointee.packets &+= UInt32(truncatingIfNeeded: packets)
            flow.pointee.bytes &+= bytes
            let seen = FlowEntry.ticks(lastSeen)
            // Only forward (wrapping compare): a worker may have seen a later packet.
            if lastSeen != 0 && seen &- flow.pointee.lastSeenTicks < 0x8000_0000 { flow.pointee.lastSeenTicks = seen }
            return true
        }
    }

    /// Clears the offload flag of the flow of `initiator`, so its next packet asks again.
    public func clearOffloadRequest(_ initiator: FiveTuple) {
        handle.withFlow(initiator) { flow in
            if let flow { flow.pointee.flags &= ~FlowEntry.offloadFlag }
        }
    }

    /// Clears every flow's offload flag (offload paused: flows ask again once it resumes).
    public func clearAllOffloadRequests() {
        for shard in 0..<handle.shardCount {
            handle.lock(shard)
            for slot in 0..<handle.slotsPerShard where handle.occupied(shard, slot) {
                handle.entry(shard, slot).pointee.flags &= ~FlowEntry.offloadFlag
            }
            handle.unlock(shard)
        }
    }

    /// A copy of the flow of `tuple` (either direction), or nil (tests, control plane).
    public func entry(_ tuple: FiveTuple) -> FlowEntry? { handle.withFlow(tuple) { $0?.pointee } }

    /// A copy of every flow (tests, flow listings; takes each shard lock in turn).
    public func entries() -> [FlowEntry] {
        var result: [FlowEntry] = []
        for shard in 0..<handle.shardCount {
            handle.lock(shard)
            for slot in 0..<handle.slotsPerShard where handle.occupied(shard, slot) {
                result.append(handle.entry(shard, slot).pointee)
            }
            handle.unlock(shard)
        }
        return result
    }

    /// The flow table seen through raw pointers: copyable, no reference counting, usable from
    /// any thread (each operation takes the one shard lock it needs).
    public struct Handle: @unchecked Sendable {
        let shardCount: Int
        let shardMask: UInt64
        let slotsPerShard: Int
        let slotMask: Int
        let limitPerShard: Int
        let timeouts: ResolvedTimeouts
        let seed: UInt64
        /// Per shard, one cache line: lock word at 0, flow count at 8.
        let headers: UnsafeMutableRawPointer
        /// Per shard, `slotsPerShard` entries, cache-line aligned (in `entriesMapping`).
        let entries: UnsafeMutablePointer<FlowEntry>
        let entriesMapping: (base: UnsafeMutableRawPointer, size: Int)
        let sweptCounter: UnsafeAtomic<UInt64>

        init(shardCount: Int, slotsPerShard: Int, limitPerShard: Int, timeouts: ResolvedTimeouts, seed: UInt64) {
            self.shardCount = shardCount
            shardMask = UInt64(shardCount - 1)
            self.slotsPerShard = slotsPerShard
            slotMask = slotsPerShard - 1
            self.limitPerShard = limitPerShard
            self.timeouts = timeouts
            self.seed = seed
            headers = .allocate(byteCount: shardCount * 64, alignment: 64)
            headers.initializeMemory(as: UInt8.self, repeating: 0, count: shardCount * 64)
            let bytes = shardCount * slotsPerShard * MemoryLayout<FlowEntry>.stride
            // Huge pages: the probe lands on a random slot per packet (see HugePageMapping).
            do {
                entriesMapping = try HugePageMapping.map(bytes: bytes, what: "flow table")
            } catch {
                fatalError("cannot allocate the flow table: \(error)")  // as `allocate` does when out of memory
            }
            let raw = entriesMapping.base
            raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)  // every slot unused; faults it all in now
            entries = raw.bindMemory(to: FlowEntry.self, capacity: shardCount * slotsPerShard)
            sweptCounter = .create(0)
        }

        func deallocate() {
            headers.deallocate()
            HugePageMapping.unmap(entriesMapping)
            sweptCounter.destroy()
        }

        @inline(__always)
        func lockWord(_ shard: Int) -> UnsafeAtomic<UInt32> {
            UnsafeAtomic(at: (headers + shard * 64).assumingMemoryBound(to: UnsafeAtomic<UInt32>.Storage.self))
        }

        @inline(__always)
        func countPointer(_ shard: Int) -> UnsafeMutablePointer<Int> {
            (headers + shard * 64 + 8).assumingMemoryBound(to: Int.self)
        }

        /// A test-and-test-and-set spin lock. Critical sections are a few hundred cycles; a
        /// holder that lost its CPU (2 cores shared with compilers here) is waited for with
        /// sched_yield after a short spin, so a waiter does not burn the holder's time slice.
        @inline(__always)
        func lock(_ shard: Int) {
            let word = lockWord(shard)
            if word.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged { return }
            var spins = 0
            while true {
                while word.load(ordering: .relaxed) != 0 {
                    spins += 1
                    if spins > 64 { sched_yield() }
                }
                if word.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged { return }
            }
        }

        @inline(__always)
        func unlock(_ shard: Int) { lockWord(shard).store(0, ordering: .releasing) }

        @inline(__always)
        func entry(_ shard: Int, _ slot: Int) -> UnsafeMutablePointer<FlowEntry> {
            entries + (shard * slotsPerShard + slot)
        }

        @inline(__always)
        func occupied(_ shard: Int, _ slot: Int) -> Bool { entry(shard, slot).pointee.flags & FlowEntry.usedFlag != 0 }

        @inline(__always)
        func expired(_ entry: UnsafeMutablePointer<FlowEntry>, now: UInt64) -> Bool {
            // Another worker's clock may be a tick ahead: a "negative" idle time is not expiry.
            let idle = FlowEntry.ticks(now) &- entry.pointee.lastSeenTicks
            return idle < 0x8000_0000 && idle > timeouts.idleLimit(entry)
        }

        /// The slot holding `key`, or the first free slot of its probe sequence (negated - 1).
        @inline(__always)
        func find(_ shard: Int, _ key: FlowKey, _ hash: UInt64) -> Int {
            var slot = Int(truncatingIfNeeded: hash) & slotMask
            while true {
                if !occupied(shard, slot) { return -slot - 1 }
                if entry(shard, slot).pointee.key == key { return slot }
                slot = (slot + 1) & slotMask
            }
        }

        /// Empties `slot` and shifts later members of its probe run back, so lookups never
        /// need tombstones.
        @inline(__always)
        func remove(_ shard: Int, _ slot: Int) {
            var hole = slot
            var next = (slot + 1) & slotMask
            while occupied(shard, next) {
                let home = Int(truncatingIfNeeded: entry(shard, next).pointee.key.hash(seed: seed)) & slotMask
                // Move `next` into the hole unless its home lies cyclically in (hole, next].
                let distanceToHome = (next - home) & slotMask
                let distanceToHole = (next - hole) & slotMask
                if distanceToHome >= distanceToHole {
                    entry(shard, hole).pointee = entry(shard, next).pointee
                    hole = next
                }
                next = (next + 1) & slotMask
            }
            entry(shard, hole).pointee.flags = 0
            countPointer(shard).pointee -= 1
        }

        /// Runs `body` on the flow of `tuple` (either direction; nil when absent) under its
        /// shard lock. Control plane.
        func withFlow<Result>(_ tuple: FiveTuple, _ body: (UnsafeMutablePointer<FlowEntry>?) -> Result) -> Result {
            let (key, _) = FlowKey.canonical(tuple)
            let (shard, hash) = shardAndHash(key)
            lock(shard)
            defer { unlock(shard) }
            let slot = find(shard, key, hash)
            return body(slot >= 0 ? entry(shard, slot) : nil)
        }

        @inline(__always)
        func shardAndHash(_ key: FlowKey) -> (Int, UInt64) {
            let hash = key.hash(seed: seed)
            return (Int(truncatingIfNeeded: (hash >> 40) & shardMask), hash)
        }

        /// Tracks one packet of `tuple` that arrived on `side`: finds or opens its flow, asks
        /// `judge` for a verdict when the flow is new or was judged under another generation
        /// (`judge` gets the initiator's tuple and runs under the shard lock), and advances TCP
        /// state. Only inside packets open flows; outside packets need one. With `offload`, a
        /// flow that `mayOffload` (and whose packet carries no SYN/FIN/RST) is flagged once and
        /// `FlowOutcome.offload` tells the caller to request its install.
        @inline(__always)
        public func track(
            _ tuple: FiveTuple, side: Side, tcpFlags: TCPFlags, length: Int, now: UInt64, generation: UInt64,
            offload: Bool = false, judge: (FiveTuple) -> CompiledVerdict
        ) -> FlowOutcome {
            var outcome = FlowOutcome(disposition: .forward, judged: false, verdict: CompiledVerdict.none,
                                      opened: false, closed: 0)
            let (key, sourceIsLow) = FlowKey.canonical(tuple)
            let (shard, hash) = shardAndHash(key)
            lock(shard)
            defer { unlock(shard) }
            var slot = find(shard, key, hash)
            if slot >= 0 && expired(entry(shard, slot), now: now) {
                remove(shard, slot)
                outcome.closed += 1
                slot = find(shard, key, hash)
            }
            if slot >= 0 {
                let flow = entry(shard, slot)
                let fromInitiator = sourceIsLow == flow.pointee.initiatorIsLow
                let generation32 = UInt32(truncatingIfNeeded: generation)
                guard fromInitiator == (side == .inside) else {
                    outcome.disposition = .noFlow
                    return outcome
                }
                if flow.pointee.generation != generation32 {
                    outcome.verdict = judge(fromInitiator ? tuple : tuple.reversed())
                    outcome.judged = true
                    if outcome.verdict.verdict == .deny {
                        remove(shard, slot)
                        outcome.closed += 1
                        outcome.disposition = .cut
                        return outcome
                    }
                    flow.pointee.generation = generation32
                    flow.pointee.group = FlowEntry.index(outcome.verdict.group)
                    flow.pointee.rule = FlowEntry.index(outcome.verdict.rule)
                    if outcome.verdict.decidedBy == .tlsPending {
                        flow.pointee.flags |= FlowEntry.tlsPendingFlag
                    } else {
                        flow.pointee.flags &= ~FlowEntry.tlsPendingFlag
                    }
                    // Its XDP entry (if any) carries the old generation: install it again.
                    flow.pointee.flags &= ~FlowEntry.offloadFlag
                }
                outcome.tlsPending = flow.pointee.flags & FlowEntry.tlsPendingFlag != 0
                if key.protocolNumber == IPProtocolNumber.tcp {
                    flow.pointee.tcpState = flow.pointee.tcpState.next(tcpFlags, fromInitiator: fromInitiator)
                }
                flow.pointee.lastSeenTicks = FlowEntry.ticks(now)
                flow.pointee.packets &+= 1
                flow.pointee.bytes &+= UInt64(length)
                if offload { outcome.offload = FlowTable.Handle.claimOffload(flow, tcpFlags) }
                return outcome
            }
            guard side == .inside else {
                outcome.disposition = .noFlow
                return outcome
            }
            outcome.verdict = judge(tuple)
            outcome.judged = true
            guard outcome.verdict.verdict == .allow else {
                outcome.disposition = .denied
                return outcome
            }
            let count = countPointer(shard)
            guard count.pointee < limitPerShard else {
                outcome.disposition = .tableFull
                return outcome
            }
            let free = -slot - 1
            outcome.tlsPending = outcome.verdict.decidedBy == .tlsPending
            entry(shard, free).pointee = FlowEntry(
                key: key, flags: FlowEntry.usedFlag | (sourceIsLow ? FlowEntry.initiatorIsLowFlag : 0)
                    | (outcome.tlsPending ? FlowEntry.tlsPendingFlag : 0),
                tcpState: key.protocolNumber == IPProtocolNumber.tcp ? TCPFlowState.initial(tcpFlags) : .none,
                generation: UInt32(truncatingIfNeeded: generation), lastSeenTicks: FlowEntry.ticks(now), packets: 1,
                group: FlowEntry.index(outcome.verdict.group), rule: FlowEntry.index(outcome.verdict.rule),
                bytes: UInt64(length))
            count.pointee += 1
            outcome.opened = true
            if offload { outcome.offload = FlowTable.Handle.claimOffload(entry(shard, free), tcpFlags) }
            return outcome
        }

        /// Flags `flow` as offloaded when it may be and was not yet; true when it was flagged now.
        @inline(__always)
        static func claimOffload(_ flow: UnsafeMutablePointer<FlowEntry>, _ tcpFlags: TCPFlags) -> Bool {
            // SYN 0x02, FIN 0x01, RST 0x04: such packets still change the TCP state.
            guard !flow.pointee.offloadRequested, tcpFlags.rawValue & 0x07 == 0, flow.pointee.mayOffload
            else { return false }
            flow.pointee.flags |= FlowEntry.offloadFlag
            return true
        }

        /// Finds the flow an ICMP error belongs to: the one of the packet it quotes
        /// (`embedded`, as its sender sent it), which must have been sent towards `side`'s
        /// far end, i.e. by the initiator when the error arrives from the outside. Re-judges a
        /// flow of an older generation like `track`. Does not refresh the flow's idle time: an
        /// error is no sign of life.
        @inline(__always)
        public func trackError(
            quoting embedded: FiveTuple, side: Side, now: UInt64, generation: UInt64,
            judge: (FiveTuple) -> CompiledVerdict
        ) -> FlowOutcome {
            var outcome = FlowOutcome(disposition: .noFlow, judged: false, verdict: CompiledVerdict.none,
                                      opened: false, closed: 0)
            let (key, sourceIsLow) = FlowKey.canonical(embedded)
            let (shard, hash) = shardAndHash(key)
            lock(shard)
            defer { unlock(shard) }
            let slot = find(shard, key, hash)
            guard slot >= 0, !expired(entry(shard, slot), now: now) else { return outcome }
            let flow = entry(shard, slot)
            let quotedFromInitiator = sourceIsLow == flow.pointee.initiatorIsLow
            guard quotedFromInitiator == (side == .outside) else { return outcome }
            if flow.pointee.generation != UInt32(truncatingIfNeeded: generation) {
                outcome.verdict = judge(flow.pointee.initiatorTuple)
                outcome.judged = true
                if outcome.verdict.verdict == .deny {
                    remove(shard, slot)
                    outcome.closed = 1
                    outcome.disposition = .cut
                    return outcome
                }
                flow.pointee.generation = UInt32(truncatingIfNeeded: generation)
            }
            flow.pointee.packets &+= 1
            outcome.disposition = .forward
            return outcome
        }

        /// Ends the TLS-pending state of the flow `key` (the TLS inspector's decision): an
        /// allowed flow keeps its entry, now carrying the deciding rule and normal forwarding; a
        /// denied one is removed (cut). Returns false when the flow is gone or no longer pending
        /// (expired, or a newer policy judged it meanwhile): the decision then changes nothing.
        public func resolveTLS(_ key: FlowKey, allow: Bool, group: Int32, rule: Int32) -> Bool {
            let (shard, hash) = shardAndHash(key)
            lock(shard)
            defer { unlock(shard) }
            let slot = find(shard, key, hash)
            guard slot >= 0 else { return false }
            let flow = entry(shard, slot)
            guard flow.pointee.flags & FlowEntry.tlsPendingFlag != 0 else { return false }
            if allow {
                flow.pointee.flags &= ~FlowEntry.tlsPendingFlag
                flow.pointee.group = FlowEntry.index(group)
                flow.pointee.rule = FlowEntry.index(rule)
            } else {
                remove(shard, slot)
            }
            return true
        }
    }
}

extension CompiledVerdict {
    /// A placeholder for "not judged" (never reported: `FlowOutcome.judged` is false).
    static let none = CompiledVerdict(
        verdict: .deny, decision: .deny, decidedBy: .defaultPolicy, mode: .enforce, group: -1, rule: -1,
        findingCount: 0)
}

// The decision for one frame, everything between "a frame arrived on side S" and "send it out
// of side S' (rewritten in place)" or "drop it, counting why". No rings and no threads here,
// so it is tested without root against frames built in memory:
//
//   plain TCP/UDP (FlowHeaderParser) ─► flow table ─ plain hit ─► route, rewrite, forward (no full parse)
//                                                  └ anything more ─► full parse ─► settle (below)
//   parse ─fail─► drop malformed          fragment ─► drop (cannot judge)     no policy ─► drop
//   ICMP error ─► flow of the quoted header (trackError)      other ─► flow table (track)
//        new / re-judged flow: CompiledPolicy.lookup(initiator's tuple) ─► findings → events
//   flow may be offloaded (FlowEntry.mayOffload) ─► OffloadRequest into the worker's ring
//   denied / cut / no flow / table full ─► drop
//   TLS-pending flow ─► TLSInspector (cold path): pass handshake / hold data / decide allow or deny
//   TCP flow cut by a new policy or denied by TLS ─► drop + reset both ends (writeReset); a denied
//        new TCP flow ─► drop, or reset its sender when `resetDeniedTCP` is on
//   route (egress side) ─none─► drop    hop limit ≤ 1 ─► ICMP time exceeded back    no neighbour ─► drop + resolve
//   decrement TTL/hop limit (incremental checksum), rewrite MACs ─► forward
//
// Fail closed everywhere: a packet is forwarded only after a live policy allowed its flow.

import Atomics
import SluicePacket
import SluicePolicy

/// A request from a worker to resolve a neighbour (next hop) the forwarding snapshot lacks.
public struct NeighbourRequest: Sendable, Equatable {
    public var interfaceIndex: Int32
    public var family: IPFamily
    public var address: UInt128
}

/// What to do with one frame.
public struct PacketDecision {
    /// The action.
    public enum Action: Equatable {
        /// Transmit the (rewritten) frame on this side.
        case forward(Side)
        /// Drop it; the counter says why (already counted).
        case drop(DataplaneCounter)
        /// Its hop limit ran out: answer with ICMP time exceeded on the arrival side
        /// (`PacketProcessor.writeTimeExceeded`), drop the frame.
        case timeExceeded
        /// Drop it (already counted under the reason) and reset the TCP connection
        /// (`PacketProcessor.writeReset`): an RST to the packet's sender out of the arrival side and,
        /// with `bothEnds`, one to its receiver out of the other side.
        case reset(DataplaneCounter, bothEnds: Bool)
    }

    public var action: Action
    // No parsed packet rides along: a decision is returned for every frame, and carrying a
    // `ParsedPacket?` made each one a copy of about 200 bytes. The rare answers (time exceeded,
    // resets) parse the frame again in `writeTimeExceeded` / `writeReset`.
}

/// The per-packet logic of one worker. A value holding raw views only (no reference counting);
/// used by one thread. `Learned` is specialized, never dispatched dynamically.
public struct PacketProcessor<Learned: LearnedAddressLookup> {
    let flows: FlowTable.Handle
    let learned: Learned
    let counters: PendingCounters
    let events: SPSCRing<DataplaneEvent>.Producer
    let neighbourRequests: SPSCRing<NeighbourRequest>.Producer
    let worker: UInt16
    /// Whether events are wanted (the API's performance mode); nil: always.
    let eventsEnabled: UnsafeAtomic<Bool>?
    /// The TLS-pending pool (owned by the dataplane or test); nil: pending flows fail closed.
    let tls: Unmanaged<TLSInspector>?
    /// Flow offload requests (nil: no offload, e.g. unit tests without XDP).
    let offload: OffloadPort?
    /// Whether a denied new TCP flow's sender gets an RST instead of silence
    /// (`DataplaneConfiguration.resetDeniedTCP`).
    let resetDeniedTCP: Bool

    /// A processor for worker `worker`, counting into `counters` and reporting into the rings
    /// while `eventsEnabled` (shared, set by the control plane) is true or absent.
    public init(flows: FlowTable.Handle, learned: Learned, counters: PendingCounters,
                events: SPSCRing<DataplaneEvent>.Producer, neighbourRequests: SPSCRing<NeighbourRequest>.Producer,
                worker: Int, eventsEnabled: UnsafeAtomic<Bool>? = nil, tls: TLSInspector? = nil,
                offload: OffloadPort? = nil, resetDeniedTCP: Bool = false) {
        self.flows = flows
        self.learned = learned
        self.counters = counters
        self.events = events
        self.neighbourRequests = neighbourRequests
        self.worker = UInt16(truncatingIfNeeded: worker)
        self.eventsEnabled = eventsEnabled
        self.tls = tls.map { Unmanaged.passUnretained($0) }
        self.offload = offload
        self.resetDeniedTCP = resetDeniedTCP
    }

    /// Decides what happens to the frame of `length` bytes at `frame`, received on `side`, and
    /// rewrites it in place when it is forwarded. `policy` and `forwarding` come from the
    /// worker's per-batch `Publication` reads; `now` is monotonic nanoseconds.
    ///
    /// Two ways through: a plain TCP/UDP packet (`FlowHeaderParser`) of a flow that needs nothing
    /// but forwarding goes from the flow table straight to the rewrite, with no full parse and no
    /// `ParsedPacket` (185 bytes) copied around; everything else, including that packet when
    /// its flow outcome asks for more (findings, TLS, offload install, drop, cut), takes the full
    /// parse and `settle`.
    @inline(__always)
    public func process(
        frame: UnsafeMutableRawPointer, length: Int, side: Side, now: UInt64,
        policy: (generation: UInt64, value: Unmanaged<CompiledPolicy>?),
        forwarding: Unmanaged<ForwardingSnapshot>?
    ) -> PacketDecision {
        counters.add(.receivedPackets)
        counters.add(.receivedBytes, UInt64(length))
        let buffer = UnsafeRawBufferPointer(start: frame, count: length)
        let offloading = offload?.enabled.load(ordering: .relaxed) ?? false
        // The judging closures are written at each call site, never stored in a variable: a stored
        // closure counts as escaping and its captures would be boxed on the heap per packet. They
        // read `self.learned` in place: a copy up here would run for every packet, and outside a
        // specialization (the worker is generic over `Learned`) it is a value-witness call.
        if let header = FlowHeaderParser.parse(buffer), let compiled = policy.value {
            let outcome = flows.track(header.tuple, side: side, tcpFlags: header.tcpFlags, length: header.ipLength,
                                      now: now, generation: policy.generation, offload: offloading) {
                PacketProcessor.judge($0, icmp: nil, compiled: compiled, learned: self.learned)
            }
            countFlowChanges(outcome)
            if outcome.disposition == .forward && !outcome.tlsPending && !outcome.offload
                && !(outcome.judged && outcome.verdict.findingCount > 0) {
                guard let forwarding else { return drop(.droppedNoRoute) }
                return forwarding._withUnsafeGuaranteedRef { table -> PacketDecision in
                    switch egress(family: header.tuple.family, destination: header.tuple.destination, side: side,
                                  table: table) {
                    case .drop(let reason):
                        return drop(reason)
                    case .via(let nextHopMAC, let ownMAC):
                        // FlowHeaderParser only accepts hop limits above 1.
                        PacketRewriter.decrementHopLimit(frame, family: header.tuple.family,
                                                         l3Offset: header.l3Offset)
                        return forwarded(frame, to: nextHopMAC, from: ownMAC, side: side, length: length)
                    }
                }
            }
            // The full parse accepts whatever FlowHeaderParser accepted (a tested contract).
            guard let packet = try? PacketParser.parse(buffer) else { return drop(.droppedMalformed) }
            return settle(outcome, packet: packet, frame: frame, length: length, side: side, now: now,
                          generation: policy.generation, compiled: compiled, forwarding: forwarding,
                          offloading: offloading)
        }
        let packet: ParsedPacket
        do {
            packet = try PacketParser.parse(buffer)
        } catch {
            return drop(.droppedMalformed)
        }
        if packet.fragment != nil { return drop(.droppedFragment) }
        guard let compiled = policy.value else { return drop(.droppedNoPolicy) }
        let outcome: FlowOutcome
        if let icmp = packet.icmp, icmp.kind == .error {
            guard let embedded = icmp.embedded else { return drop(.droppedMalformed) }
            outcome = flows.trackError(quoting: embedded.tuple, side: side, now: now, generation: policy.generation) {
                PacketProcessor.judge($0, icmp: packet.icmp, compiled: compiled, learned: self.learned)
            }
        } else {
            outcome = flows.track(packet.tuple, side: side, tcpFlags: packet.tcpFlags, length: packet.ipLength,
                                  now: now, generation: policy.generation, offload: offloading) {
                PacketProcessor.judge($0, icmp: packet.icmp, compiled: compiled, learned: self.learned)
            }
        }
        countFlowChanges(outcome)
        return settle(outcome, packet: packet, frame: frame, length: length, side: side, now: now,
                      generation: policy.generation, compiled: compiled, forwarding: forwarding, offloading: offloading)
    }

    @inline(__always)
    func countFlowChanges(_ outcome: FlowOutcome) {
        if outcome.opened { counters.add(.flowsOpened) }
        if outcome.closed > 0 { counters.add(.flowsClosed, UInt64(outcome.closed)) }
    }

    /// Everything after the flow table for a packet that is more than a plain flow hit: the
    /// offload request, findings, the TLS inspector, drops, cuts and resets, and forwarding with
    /// the hop-limit check (ICMP time exceeded needs the parsed packet).
    @inline(never)
    func settle(
        _ outcome: FlowOutcome, packet: ParsedPacket, frame: UnsafeMutableRawPointer, length: Int, side: Side,
        now: UInt64, generation: UInt64, compiled: Unmanaged<CompiledPolicy>,
        forwarding: Unmanaged<ForwardingSnapshot>?, offloading: Bool
    ) -> PacketDecision {
        if outcome.offload, let offload {
            let initiator = side == .inside ? packet.tuple : packet.tuple.reversed()
            if offload.requests.push(OffloadRequest(initiator: initiator,
                                                    generation: UInt32(truncatingIfNeeded: generation))) {
                counters.add(.offloadRequests)
            } else {
                // Ring full: unflag the flow so a later packet asks again (second lock, rare).
                counters.add(.offloadRequestsDropped)
                flows.withFlow(initiator) { flow in
                    if let flow { flow.pointee.flags &= ~FlowEntry.offloadFlag }
                }
            }
        }
        if outcome.judged && outcome.verdict.findingCount > 0 {
            report(outcome, packet: packet, side: side, now: now, generation: generation, compiled: compiled)
        }
        switch outcome.disposition {
        case .forward:
            if outcome.tlsPending {
                if outcome.judged { counters.add(.tlsPending) }
                if let stopped = inspectTLS(frame: frame, packet: packet, side: side, now: now,
                                            generation: generation, compiled: compiled) {
                    return stopped
                }
            }
        case .denied:
            counters.add(.deniedBytes, UInt64(length))
            if offloading && side == .inside { requestDrop(packet.tuple, generation: generation) }
            if resetDeniedTCP { return dropOrReset(.deniedPackets, packet, bothEnds: false) }
            return drop(.deniedPackets)
        case .cut:
            counters.add(.flowsCut)
            let tuple = side == .inside ? packet.tuple : packet.tuple.reversed()
            emit(DataplaneEvent(kind: .flowCut, tuple: tuple, generation: generation,
                                group: outcome.verdict.group, rule: outcome.verdict.rule, enforced: true,
                                timestamp: now, worker: worker))
            return dropOrReset(.droppedFlowCut, packet, bothEnds: true)
        case .noFlow:
            return drop(.droppedNoFlow)
        case .tableFull:
            counters.add(.flowsRefused)
            return drop(.droppedFlowTableFull)
        }
        guard let forwarding else { return drop(.droppedNoRoute) }
        return forwarding._withUnsafeGuaranteedRef { table -> PacketDecision in
            switch egress(family: packet.tuple.family, destination: packet.tuple.destination, side: side,
                          table: table) {
            case .drop(let reason):
                return drop(reason)
            case .via(let nextHopMAC, let ownMAC):
                guard PacketRewriter.decrementHopLimit(frame, packet) else {
                    counters.add(.droppedHopLimit)
                    return PacketDecision(action: .timeExceeded)
                }
                return forwarded(frame, to: nextHopMAC, from: ownMAC, side: side, length: length)
            }
        }
    }

    /// How a forwarded packet leaves: by the next hop's MAC from the egress interface's own, or
    /// not at all.
    enum Egress {
        case via(nextHop: MACAddress, own: MACAddress)
        /// No route by the other side, or its next hop is unresolved (resolution was requested).
        case drop(DataplaneCounter)
    }

    /// The next hop of a packet to `destination` received on `side`: it must leave by the other
    /// side, and its neighbour must be known (else the control plane is asked to resolve it).
    @inline(__always)
    func egress(family: IPFamily, destination: UInt128, side: Side, table: ForwardingSnapshot) -> Egress {
        let egress = table.interface(side.opposite)
        guard let nextHop = table.nextHop(family: family, destination: destination, interfaceIndex: egress.index)
        else { return .drop(.droppedNoRoute) }
        guard let mac = table.neighbourMAC(interfaceIndex: egress.index, family: family, address: nextHop) else {
            _ = neighbourRequests.push(NeighbourRequest(interfaceIndex: egress.index, family: family, address: nextHop))
            return .drop(.droppedNoNeighbour)
        }
        return .via(nextHop: mac, own: egress.mac)
    }

    /// Addresses a frame (hop limit already decremented) to its next hop and counts it forwarded.
    @inline(__always)
    func forwarded(_ frame: UnsafeMutableRawPointer, to nextHop: MACAddress, from own: MACAddress, side: Side,
                   length: Int) -> PacketDecision {
        PacketRewriter.setEthernetAddresses(frame, destination: nextHop, source: own)
        counters.add(.allowedPackets)
        counters.add(.allowedBytes, UInt64(length))
        return PacketDecision(action: .forward(side.opposite))
    }

    /// The TLS-pending path (docs/design/tls-pending.md): the packet of a flow waiting for its
    /// handshake goes to the inspector. Returns nil to forward it, or the drop. Allocates; only
    /// pending flows (a few packets each) come here.
    @inline(never)
    func inspectTLS(frame: UnsafeMutableRawPointer, packet: ParsedPacket, side: Side, now: UInt64,
                    generation: UInt64, compiled: Unmanaged<CompiledPolicy>) -> PacketDecision? {
        let initiatorTuple = side == .inside ? packet.tuple : packet.tuple.reversed()
        let key = FlowKey.canonical(packet.tuple).key
        let query = PacketProcessor.query(initiatorTuple, icmp: packet.icmp)
        let learned = self.learned
        let step: TLSStep
        if let tls {
            let l4 = UnsafeRawPointer(frame) + packet.l4Offset
            let sequence = l4.loadUnaligned(fromByteOffset: 4, as: UInt32.self).bigEndian
            let payload = UnsafeRawBufferPointer(start: UnsafeRawPointer(frame) + packet.payloadOffset,
                                                 count: max(packet.packetEnd - packet.payloadOffset, 0))
            step = tls._withUnsafeGuaranteedRef {
                $0.inspect(key: key, fromClient: side == .inside, sequence: sequence, flags: packet.tcpFlags,
                           payload: payload, now: now) { observation, chain in
                    var findings = FindingList()
                    let verifier = SeenChain(chain: chain, fallback: observation.chainVerified)
                    let verdict = compiled._withUnsafeGuaranteedRef {
                        $0.lookup(query, learned: learned, tls: observation, verifier: verifier, findings: &findings)
                    }
                    return (verdict, findings)
                }
            }
        } else {
            step = .failed(.tlsFailedPoolFull)
        }
        switch step {
        case .pass:
            return nil
        case .hold:
            return drop(.tlsHeldPackets)
        case .decided(let verdict, let findings):
            for index in 0..<findings.held {
                let finding = findings[index]
                emit(DataplaneEvent(kind: .tls, tuple: initiatorTuple, generation: generation, group: finding.group,
                                    rule: finding.rule, enforced: finding.enforced, timestamp: now, worker: worker))
            }
            let allow = verdict.verdict == .allow
            _ = flows.resolveTLS(key, allow: allow, group: verdict.group, rule: verdict.rule)
            if allow {
                counters.add(.tlsAllowed)
                return nil
            }
            counters.add(.flowsClosed)
            return dropOrReset(.tlsDenied, packet, bothEnds: true)
        case .failed(let reason):
            // Fail closed, except that an audit-mode decision lets it through and records it.
            let pending = compiled._withUnsafeGuaranteedRef { $0.lookup(query, learned: learned) }
            let audit = pending.mode == .audit
            emit(DataplaneEvent(kind: .tls, tuple: initiatorTuple, generation: generation, group: pending.group,
                                rule: pending.rule, enforced: !audit, timestamp: now, worker: worker))
            _ = flows.resolveTLS(key, allow: audit, group: pending.group, rule: pending.rule)
            tls?._withUnsafeGuaranteedRef { $0.rememberFailure(key, reason) }
            if audit {
                counters.add(reason)
                return nil
            }
            counters.add(.flowsClosed)
            return dropOrReset(reason, packet, bothEnds: true)
        }
    }

    /// Asks for a drop entry for the denied flow of `tuple`, only while events are off: with
    /// events on, every denied packet is judged and reported (audit findings count packets),
    /// which a drop in XDP would hide. Once per flow and generation per worker (deny cache).
    @inline(__always)
    func requestDrop(_ tuple: FiveTuple, generation: UInt64) {
        guard let offload, let eventsEnabled, !eventsEnabled.load(ordering: .relaxed),
              tuple.protocolNumber == IPProtocolNumber.tcp || tuple.protocolNumber == IPProtocolNumber.udp
        else { return }
        let hash = FlowKey.canonical(tuple).key.hash(seed: generation | 1)
        guard offload.claimDeny(hash) else { return }
        if offload.requests.push(OffloadRequest(initiator: tuple, generation: UInt32(truncatingIfNeeded: generation),
                                                drop: true)) {
            counters.add(.offloadRequests)
        } else {
            counters.add(.offloadRequestsDropped)
        }
    }

    /// The policy's verdict for the initiator's `tuple` (read without retain/release).
    @inline(__always)
    static func judge(_ tuple: FiveTuple, icmp: ICMPInfo?, compiled: Unmanaged<CompiledPolicy>, learned: Learned)
        -> CompiledVerdict
    {
        let query = PacketProcessor.query(tuple, icmp: icmp)
        return compiled._withUnsafeGuaranteedRef { $0.lookup(query, learned: learned) }
    }

    @inline(__always)
    func drop(_ reason: DataplaneCounter) -> PacketDecision {
        counters.add(reason)
        return PacketDecision(action: .drop(reason))
    }

    /// Drops a packet counted under `reason`; a TCP segment other than a reset also asks the worker
    /// to reset its connection (`writeReset` checks the rest: unicast, complete header).
    @inline(__always)
    func dropOrReset(_ reason: DataplaneCounter, _ packet: ParsedPacket, bothEnds: Bool) -> PacketDecision {
        counters.add(reason)
        guard packet.tuple.protocolNumber == IPProtocolNumber.tcp, packet.hasTransportHeader,
              !packet.tcpFlags.contains(.rst)
        else { return PacketDecision(action: .drop(reason)) }
        return PacketDecision(action: .reset(reason, bothEnds: bothEnds))
    }

    @inline(__always)
    func emit(_ event: DataplaneEvent) {
        if let eventsEnabled, !eventsEnabled.load(ordering: .relaxed) { return }
        if events.push(event) { counters.add(.eventsQueued) } else { counters.add(.eventsDropped) }
    }

    /// Emits the findings of a judged packet. The hot-path lookup only counts them; this second
    /// lookup lists them, and runs only for the packets that have any (denies and audits).
    func report(_ outcome: FlowOutcome, packet: ParsedPacket, side: Side, now: UInt64, generation: UInt64,
                compiled: Unmanaged<CompiledPolicy>) {
        let tuple = side == .inside ? packet.tuple : packet.tuple.reversed()
        let kind: DataplaneEvent.Kind = outcome.opened || outcome.disposition == .denied ? .finding : .rejudged
        var findings = FindingList()
        let query = PacketProcessor.query(tuple, icmp: packet.icmp)
        _ = compiled._withUnsafeGuaranteedRef { $0.lookup(query, learned: learned, findings: &findings) }
        for index in 0..<findings.held {
            let finding = findings[index]
            emit(DataplaneEvent(kind: kind, tuple: tuple, generation: generation, group: finding.group,
                                rule: finding.rule, enforced: finding.enforced, timestamp: now, worker: worker))
        }
    }

    /// The policy query for the initiator's `tuple`. ICMP type/code come from the packet, except
    /// for replies and errors, which are judged as the echo request that opened their flow.
    @inline(__always)
    static func query(_ tuple: FiveTuple, icmp: ICMPInfo?) -> PacketQuery {
        let source: IPAddress = tuple.family == .v4 ? .v4(tuple.sourceV4) : .v6(tuple.source)
        let destination: IPAddress = tuple.family == .v4 ? .v4(tuple.destinationV4) : .v6(tuple.destination)
        var type: UInt8 = 0
        var code: UInt8 = 0
        if tuple.protocolNumber == IPProtocolNumber.icmp || tuple.protocolNumber == IPProtocolNumber.icmpv6 {
            if let icmp, icmp.kind == .echoRequest || icmp.kind == .other {
                type = icmp.type
                code = icmp.code
            } else {
                type = tuple.protocolNumber == IPProtocolNumber.icmp ? 8 : 128
            }
        }
        return PacketQuery(src: source, dst: destination, proto: tuple.protocolNumber, srcPort: tuple.sourcePort,
                           dstPort: tuple.destinationPort, icmpType: type, icmpCode: code)
    }

    /// Writes the ICMP time exceeded answering the frame `original` (received on `side`, decided
    /// `.timeExceeded`, parsed again here: the cold path) into `buffer`: from the arrival interface's address and MAC back to the sender's MAC.
    /// Returns the frame length, or nil when no error may or can be sent.
    public func writeTimeExceeded(
        original: UnsafeRawBufferPointer, side: Side,
        forwarding: Unmanaged<ForwardingSnapshot>, into buffer: UnsafeMutableRawBufferPointer
    ) -> Int? {
        guard let packet = try? PacketParser.parse(original),
              ICMPErrorBuilder.mayAnswer(packet, frame: original) else { return nil }
        return forwarding._withUnsafeGuaranteedRef { table -> Int? in
            let arrival = table.interface(side)
            let source: UInt128 = packet.tuple.family == .v4 ? UInt128(arrival.ipv4) : arrival.ipv6
            guard source != 0 else { return nil }
            return ICMPErrorBuilder.write(
                .timeExceeded, answering: packet, original: original, from: source, into: buffer,
                sourceMAC: arrival.mac, destinationMAC: MACAddress(from: original, at: 6))
        }
    }
}

extension PacketProcessor {
    /// Writes the RST for `target` answering the frame `original` (received on `side`, decided
    /// `.reset`, parsed again here: the cold path) into `buffer` (TCPResetBuilder). The sender's goes back out of the arrival side to the frame's
    /// source MAC; the receiver's goes out of the other side to its next hop's MAC from the
    /// forwarding snapshot, as forwarding would send it. Returns the frame length and its egress
    /// side, or nil when none may or can be sent (a missing neighbour is counted and asked for).
    public func writeReset(
        _ target: TCPResetTarget, original: UnsafeRawBufferPointer, side: Side,
        forwarding: Unmanaged<ForwardingSnapshot>, into buffer: UnsafeMutableRawBufferPointer
    ) -> (length: Int, egress: Side)? {
        guard let packet = try? PacketParser.parse(original) else { return nil }
        return forwarding._withUnsafeGuaranteedRef { table -> (length: Int, egress: Side)? in
            let egress = target == .sender ? side : side.opposite
            let interface = table.interface(egress)
            let destinationMAC: MACAddress
            if target == .sender {
                destinationMAC = MACAddress(from: original, at: 6)
            } else {
                let family = packet.tuple.family
                guard let nextHop = table.nextHop(family: family, destination: packet.tuple.destination,
                                                  interfaceIndex: interface.index) else { return nil }
                guard let mac = table.neighbourMAC(interfaceIndex: interface.index, family: family, address: nextHop)
                else {
                    counters.add(.tcpResetsNoNeighbour)
                    _ = neighbourRequests.push(NeighbourRequest(interfaceIndex: interface.index, family: family,
                                                                address: nextHop))
                    return nil
                }
                destinationMAC = mac
            }
            guard let length = TCPResetBuilder.write(
                target, answering: packet, original: original, into: buffer, sourceMAC: interface.mac,
                destinationMAC: destinationMAC) else { return nil }
            return (length, egress)
        }
    }
}

/// The chain verifier a TLS lookup gets: the handshake's chain when one was seen, else the
/// remembered answer (a flow re-judged from its record).
struct SeenChain: TLSChainVerifying {
    let chain: CertificateChainVerifier?
    let fallback: Bool

    func verify(anchorsPEM: [String]) -> Bool { chain?.verify(anchorsPEM: anchorsPEM) ?? fallback }
}

// The TLS-pending state of the workers (docs/design/tls-pending.md): a flow whose verdict is
// `tls_pending` sends its packets here instead of straight to forwarding. The inspector
// reassembles the client's first flight (and, while a rule needs the certificate, the server's
// flight up to Certificate) from TCP segments, in order, tolerating reordering and
// retransmission, in fixed buffers of a preallocated pool, and asks the policy again with what
// the handshake showed:
//
//   SYN ─► slot from the pool (none free ─► deny pool_full)     SYN+ACK ─► server stream base
//   client data ─► client buffer ─► ClientHelloReader ─► judge(SNI, awaiting certificate)
//       decided ─► allow / deny       still pending (certificate rule) ─► server data ─►
//       ServerFlightReader ─► Certificate (X.509) or hidden (TLS 1.3) ─► judge ─► allow / deny
//   overflow, not TLS, too slow, start unseen ─► deny (fail closed, counted by reason)
//
// It is shared by all workers (a flow's two directions may arrive on different workers) and
// guarded by one lock; only packets of pending flows come here, so ordinary packets never take
// that lock. Everything here is the cold path: parsing and pattern matching allocate.
// Decisions are remembered per flow (a bounded map) for findings, the wiretap and re-judging
// under a new policy.

import Foundation
import SluicePacket
import SluicePolicy
import SluiceWire

/// Bounds of the TLS inspector.
public struct TLSInspectorConfiguration: Sendable, Equatable {
    /// Flows that may be pending at once; a new one beyond that is denied (`tls_failed_pool_full`).
    public var maxPendingFlows: Int = 512
    /// Bytes of the client's stream kept per flow: a ClientHello may be up to 16 KiB plus record
    /// headers (post-quantum key shares make 1.5–2 KiB common).
    public var clientBufferBytes: Int = 16_384 + 64
    /// Bytes of the server's stream kept per flow, up to the Certificate message (TLS ≤ 1.2).
    public var serverBufferBytes: Int = 32_768
    /// Most separate byte ranges a stream may hold before its gaps are filled.
    public var maxRanges: Int = 16
    /// Seconds a flow may stay pending.
    public var pendingTimeout: Double = 10
    /// Decided flows remembered (server name, certificate) for findings, wiretap and re-judging.
    public var rememberedFlows: Int = 65_536

    public init() {}
}

/// What the handshake of one flow showed and how it was decided (control plane: findings, wiretap).
public struct TLSFlowRecord: Sendable, Equatable {
    /// The observation the decision was made on.
    public var observation: TLSObservation
    /// Whether the flow was let through (an audit-mode deny is let through).
    public var allowed: Bool
    /// The fail-closed reason, if the handshake could not be judged.
    public var failure: DataplaneCounter?
}

/// What the inspector says about one packet of a pending flow.
public enum TLSStep {
    /// A handshake packet: forward it; the flow stays pending.
    case pass
    /// Client data before the decision: drop it (the client retransmits).
    case hold
    /// The policy decided with the handshake: the verdict and its findings.
    case decided(CompiledVerdict, FindingList)
    /// The handshake cannot be judged: deny (fail closed); the counter says why.
    case failed(DataplaneCounter)
}

/// One direction's bytes from its initial sequence number, in a fixed buffer.
struct StreamAssembly {
    var buffer: UnsafeMutableRawPointer
    var capacity: Int
    var baseKnown = false
    /// Sequence number of the stream's first byte (ISN + 1).
    var base: UInt32 = 0
    /// Received byte ranges, sorted and disjoint.
    var ranges: [Range<Int>] = []
    /// Bytes already handed to the reader.
    var fed = 0

    /// Where the stream's first TLS record ends, once its 5-byte header is in (else 0).
    var firstRecordEnd: Int {
        guard contiguous >= 5 else { return 0 }
        return 5 + (Int(buffer.load(fromByteOffset: 3, as: UInt8.self)) << 8
            | Int(buffer.load(fromByteOffset: 4, as: UInt8.self)))
    }

    /// The length of the gap-free prefix.
    var contiguous: Int { ranges.first.map { $0.lowerBound == 0 ? $0.upperBound : 0 } ?? 0 }

    enum Insertion { case stored, overflow }

    /// Stores a segment's payload; bytes before the base (old retransmissions) are ignored.
    mutating func insert(sequence: UInt32, payload: UnsafeRawBufferPointer, maxRanges: Int) -> Insertion {
        var start = Int(Int32(bitPattern: sequence &- base))
        var bytes = payload
        if start < 0 {
            guard start + bytes.count > 0 else { return .stored }
            bytes = UnsafeRawBufferPointer(rebasing: bytes[(-start)...])
            start = 0
        }
        guard !bytes.isEmpty else { return .stored }
        guard start + bytes.count <= capacity else { return .overflow }
        (buffer + start).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        var merged = start..<(start + bytes.count)
        var kept: [Range<Int>] = []
        kept.reserveCapacity(ranges.count + 1)
        for range in ranges {
            if range.upperBound < merged.lowerBound || range.lowerBound > merged.upperBound {
                kept.append(range)
            } else {
                merged = min(range.lowerBound, merged.lowerBound)..<max(range.upperBound, merged.upperBound)
            }
        }
        kept.append(merged)
        kept.sort { $0.lowerBound < $1.lowerBound }
        guard kept.count <= maxRanges else { return .overflow }
        ranges = kept
        return .stored
    }

    /// The contiguous bytes not yet handed to the reader (marks them handed).
    mutating func unread() -> UnsafeRawBufferPointer {
        let end = contiguous
        defer { fed = max(fed, end) }
        guard end > fed else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: buffer + fed, count: end - fed)
    }
}

/// The state of one pending flow.
struct PendingTLSFlow {
    var key: FlowKey
    var started: UInt64
    var client: StreamAssembly
    var server: StreamAssembly
    var clientReader = TLSClientHelloReader()
    var serverReader = TLSServerFlightReader()
    /// Set once the ClientHello was read.
    var observation: TLSObservation?
    /// Client stream length when the ClientHello was complete: later client bytes are held.
    var helloEnd = 0
    /// The server answered with a HelloRetryRequest: the client's second ClientHello must pass.
    var retryRequested = false
}

/// The TLS-pending pool and decision logic, shared by all workers of a dataplane.
public final class TLSInspector: @unchecked Sendable {
    public let configuration: TLSInspectorConfiguration
    private let lock = NSLock()
    /// All stream buffers, allocated once: per slot the client's, then the server's.
    private let arena: UnsafeMutableRawPointer
    private var slots: [PendingTLSFlow?]
    private var freeSlots: [Int]
    private var index: [FlowKey: Int]
    private var remembered: [FlowKey: TLSFlowRecord]
    /// Keys of `remembered` in insertion order (a ring), for bounded eviction.
    private var rememberedOrder: [FlowKey?]
    private var rememberedNext = 0
    private var abandoned: UInt64 = 0

    /// A pool of `configuration.maxPendingFlows` slots with their buffers.
    public init(_ configuration: TLSInspectorConfiguration = TLSInspectorConfiguration()) {
        precondition(configuration.maxPendingFlows > 0 && configuration.rememberedFlows > 0)
        self.configuration = configuration
        let perSlot = configuration.clientBufferBytes + configuration.serverBufferBytes
        arena = .allocate(byteCount: max(perSlot * configuration.maxPendingFlows, 1), alignment: 64)
        slots = Array(repeating: nil, count: configuration.maxPendingFlows)
        freeSlots = Array((0..<configuration.maxPendingFlows).reversed())
        index = Dictionary(minimumCapacity: configuration.maxPendingFlows)
        remembered = Dictionary(minimumCapacity: min(configuration.rememberedFlows, 4096))
        rememberedOrder = Array(repeating: nil, count: configuration.rememberedFlows)
    }

    deinit { arena.deallocate() }

    /// Flows pending now.
    public var pendingCount: Int { lock.withLock { index.count } }

    /// Slots freed by `sweep` because their flow went silent while pending.
    public var abandonedCount: UInt64 { lock.withLock { abandoned } }

    /// How the handshake of the flow with `tuple` (either direction) was decided, if remembered.
    public func record(for tuple: FiveTuple) -> TLSFlowRecord? {
        let key = FlowKey.canonical(tuple).key
        return lock.withLock { remembered[key] }
    }

    /// The server name the client of `tuple`'s flow asked for, if its handshake was seen.
    public func serverName(for tuple: FiveTuple) -> String? { record(for: tuple)?.observation.sni }

    /// Frees the slots of flows pending for more than twice the timeout (their flow went silent;
    /// a packet arriving later is judged as a flow whose handshake was not seen). Control plane.
    @discardableResult
    public func sweep(now: UInt64) -> Int {
        let limit = UInt64(configuration.pendingTimeout * 2e9)
        return lock.withLock {
            var freed = 0
            for (key, slot) in index where now &- slots[slot]!.started > limit && now > slots[slot]!.started {
                release(key, slot)
                freed += 1
            }
            abandoned &+= UInt64(freed)
            return freed
        }
    }

    /// Handles one packet of a pending flow. `fromClient`: sent by the initiator. `sequence`,
    /// `flags` and `payload` are its TCP fields. `judge` evaluates the policy with an
    /// observation (it runs under the inspector's lock, never under a flow-table lock).
    func inspect(
        key: FlowKey, fromClient: Bool, sequence: UInt32, flags: TCPFlags, payload: UnsafeRawBufferPointer,
        now: UInt64, judge: (TLSObservation, CertificateChainVerifier?) -> (CompiledVerdict, FindingList)
    ) -> TLSStep {
        lock.lock()
        defer { lock.unlock() }
        guard let slot = index[key] else {
            return start(key: key, fromClient: fromClient, sequence: sequence, flags: flags, payload: payload,
                         now: now, judge: judge)
        }
        if now > slots[slot]!.started && now - slots[slot]!.started > UInt64(configuration.pendingTimeout * 1e9) {
            return fail(key, slot, .tlsFailedTimeout)
        }
        if flags.contains(.rst) {
            release(key, slot)
            return .pass  // the connection ends; nothing was decided, nothing to let through
        }
        if flags.contains(.syn) {
            if fromClient {
                slots[slot]!.client.base = sequence &+ 1
                slots[slot]!.client.baseKnown = true
                if !payload.isEmpty {  // a retransmitted Fast Open SYN
                    return clientData(key, slot, sequence: sequence &+ 1, payload: payload, judge: judge)
                }
            } else {
                slots[slot]!.server.base = sequence &+ 1
                slots[slot]!.server.baseKnown = true
            }
            return .pass
        }
        guard !payload.isEmpty else { return .pass }
        return fromClient
            ? clientData(key, slot, sequence: sequence, payload: payload, judge: judge)
            : serverData(key, slot, sequence: sequence, payload: payload, judge: judge)
    }

    /// A packet of a pending flow without a slot: a new flow's SYN takes one; anything else is a
    /// flow whose handshake this inspector did not see (picked up mid-stream, or re-judged by a
    /// new policy): decided with the remembered handshake if there is one, else denied.
    private func start(
        key: FlowKey, fromClient: Bool, sequence: UInt32, flags: TCPFlags, payload: UnsafeRawBufferPointer,
        now: UInt64, judge: (TLSObservation, CertificateChainVerifier?) -> (CompiledVerdict, FindingList)
    ) -> TLSStep {
        if fromClient && flags.contains(.syn) && !flags.contains(.ack) {
            guard let slot = freeSlots.popLast() else { return .failed(.tlsFailedPoolFull) }
            let perSlot = configuration.clientBufferBytes + configuration.serverBufferBytes
            let base = arena + slot * perSlot
            var flow = PendingTLSFlow(
                key: key, started: now,
                client: StreamAssembly(buffer: base, capacity: configuration.clientBufferBytes),
                server: StreamAssembly(buffer: base + configuration.clientBufferBytes,
                                       capacity: configuration.serverBufferBytes))
            flow.client.base = sequence &+ 1
            flow.client.baseKnown = true
            slots[slot] = flow
            index[key] = slot
            // TCP Fast Open: the SYN carries the first bytes of the stream (at ISN + 1).
            guard payload.isEmpty else {
                return clientData(key, slot, sequence: sequence &+ 1, payload: payload, judge: judge)
            }
            return .pass
        }
        if let record = remembered[key], record.failure == nil {
            let (verdict, findings) = judge(record.observation, nil)
            return verdict.decidedBy == .tlsPending ? .failed(.tlsFailedUnseen) : .decided(verdict, findings)
        }
        if flags.contains(.rst) { return .pass }
        return .failed(.tlsFailedUnseen)
    }

    private func clientData(
        _ key: FlowKey, _ slot: Int, sequence: UInt32, payload: UnsafeRawBufferPointer,
        judge: (TLSObservation, CertificateChainVerifier?) -> (CompiledVerdict, FindingList)
    ) -> TLSStep {
        if slots[slot]!.observation != nil {
            // The ClientHello was read and the server's certificate is awaited: a retransmission
            // of the hello passes, anything beyond it is application data (or the rest of the
            // client's handshake, which needs the server's flight first) and waits.
            // After a HelloRetryRequest the client's second ClientHello passes too (TLS 1.3 allows no
            // early data after a retry; the decision waits for the real ServerHello).
            let end = Int(Int32(bitPattern: sequence &- slots[slot]!.client.base)) + payload.count
            return end <= slots[slot]!.helloEnd || slots[slot]!.retryRequested ? .pass : .hold
        }
        guard slots[slot]!.client.baseKnown else { return fail(key, slot, .tlsFailedUnseen) }
        guard slots[slot]!.client.insert(sequence: sequence, payload: payload, maxRanges: configuration.maxRanges)
                == .stored else { return fail(key, slot, .tlsFailedOverflow) }
        let bytes = slots[slot]!.client.unread()
        guard !bytes.isEmpty else {
            // A gap before it: kept for reassembly, and forwarded only when it lies inside the
            // first record the client announced (part of the hello); anything else waits (the
            // client retransmits it), so no byte past the handshake passes before the decision.
            let end = Int(Int32(bitPattern: sequence &- slots[slot]!.client.base)) + payload.count
            return end <= slots[slot]!.client.firstRecordEnd ? .pass : .hold
        }
        switch slots[slot]!.clientReader.feed(bytes) {
        case .needMoreData:
            if slots[slot]!.client.contiguous >= configuration.clientBufferBytes {
                return fail(key, slot, .tlsFailedOverflow)
            }
            return .pass
        case .failed:
            return fail(key, slot, .tlsFailedGarbage)
        case .clientHello(let hello):
            let observation = TLSObservation(sni: hello.serverName, awaitingCertificate: true,
                                             encryptedClientHello: hello.hasEncryptedClientHello)
            slots[slot]!.observation = observation
            slots[slot]!.helloEnd = slots[slot]!.client.contiguous
            let (verdict, findings) = judge(observation, nil)
            if verdict.decidedBy == .tlsPending {
                // A rule needs the certificate: the hello must reach the server to get it.
                return serverFlight(key, slot, judge: judge) ?? .pass
            }
            finish(key, slot, observation, allowed: verdict.verdict == .allow)
            return .decided(verdict, findings)
        }
    }

    private func serverData(
        _ key: FlowKey, _ slot: Int, sequence: UInt32, payload: UnsafeRawBufferPointer,
        judge: (TLSObservation, CertificateChainVerifier?) -> (CompiledVerdict, FindingList)
    ) -> TLSStep {
        guard slots[slot]!.server.baseKnown else { return fail(key, slot, .tlsFailedUnseen) }
        guard slots[slot]!.server.insert(sequence: sequence, payload: payload, maxRanges: configuration.maxRanges)
                == .stored else { return fail(key, slot, .tlsFailedOverflow) }
        guard slots[slot]!.observation != nil else { return .pass }  // the server spoke first: keep it for later
        return serverFlight(key, slot, judge: judge) ?? .pass
    }

    /// Reads what the server's stream holds; a step once the certificate question is answered.
    private func serverFlight(
        _ key: FlowKey, _ slot: Int,
        judge: (TLSObservation, CertificateChainVerifier?) -> (CompiledVerdict, FindingList)
    ) -> TLSStep? {
        let bytes = slots[slot]!.server.unread()
        if !bytes.isEmpty { slots[slot]!.serverReader.append(bytes) }
        var observation = slots[slot]!.observation!
        observation.awaitingCertificate = false
        var verifier: CertificateChainVerifier?
        while true {
            switch slots[slot]!.serverReader.next() {
            case .needMoreData:
                if slots[slot]!.server.contiguous >= configuration.serverBufferBytes {
                    return fail(key, slot, .tlsFailedOverflow)
                }
                return nil
            case .serverHello(let hello):
                if hello.isHelloRetryRequest { slots[slot]!.retryRequested = true }
                continue
            case .failed:
                return fail(key, slot, .tlsFailedGarbage)
            case .certificateHidden:
                observation.tls13 = (slots[slot]!.serverReader.negotiated?.negotiatedVersion ?? 0) >= 0x0304
            case .certificates(let list):
                guard let leaf = list.leaf, let info = CertificateInspection.info(leafDER: leaf) else {
                    return fail(key, slot, .tlsFailedGarbage)
                }
                observation.certificate = info
                verifier = CertificateChainVerifier(chain: list.certificates.map { Array($0) })
            }
            break
        }
        let (verdict, findings) = judge(observation, verifier)
        guard verdict.decidedBy != .tlsPending else { return fail(key, slot, .tlsFailedGarbage) }
        observation.chainVerified = verifier?.anyVerified ?? false
        finish(key, slot, observation, allowed: verdict.verdict == .allow)
        return .decided(verdict, findings)
    }

    private func fail(_ key: FlowKey, _ slot: Int, _ reason: DataplaneCounter) -> TLSStep {
        let observation = slots[slot]!.observation ?? TLSObservation(sni: nil)
        remember(key, TLSFlowRecord(observation: observation, allowed: false, failure: reason))
        release(key, slot)
        return .failed(reason)
    }

    private func finish(_ key: FlowKey, _ slot: Int, _ observation: TLSObservation, allowed: Bool) {
        remember(key, TLSFlowRecord(observation: observation, allowed: allowed, failure: nil))
        release(key, slot)
    }

    private func release(_ key: FlowKey, _ slot: Int) {
        slots[slot] = nil
        index[key] = nil
        freeSlots.append(slot)
    }

    private func remember(_ key: FlowKey, _ record: TLSFlowRecord) {
        if remembered.updateValue(record, forKey: key) != nil { return }
        if let evicted = rememberedOrder[rememberedNext] { remembered[evicted] = nil }
        rememberedOrder[rememberedNext] = key
        rememberedNext = (rememberedNext + 1) % rememberedOrder.count
    }

    /// A fail-closed record for `tuple`'s flow (the worker failed it before any slot existed).
    func rememberFailure(_ key: FlowKey, _ reason: DataplaneCounter) {
        lock.withLock {
            if remembered[key] == nil {
                remember(key, TLSFlowRecord(observation: TLSObservation(sni: nil), allowed: false, failure: reason))
            }
        }
    }
}

// One pinned worker thread per queue. It owns queue q of both interfaces, bound to one shared
// UMEM, so forwarding is a descriptor move, never a copy:
//
//   inside rx q ──┐                                  ┌──► outside tx q ──► completion(out) ─┐
//                 ├─► PacketProcessor (≤64 / batch) ─┤                                       ├─► allocator
//   outside rx q ─┘                                  └──► inside tx q  ──► completion(in) ──┘      │
//        ▲ fill(in), fill(out) ◄──────────────────────────── refill ◄──────────────────────────────┘
//
// Every frame is in exactly one place: the allocator, a fill ring (or being received into), an
// rx ring, or a tx ring until its completion; `FrameAccounting` adds them up. Per batch the
// worker reads the policy and forwarding pointers once (Publication), takes the clock once,
// and flushes its counters once. The loop keeps every ring and table in locals or raw memory:
// no allocation, no ARC, no locks but the flow-table shard lock inside `FlowTable.track`.

#if canImport(Glibc)
import Glibc
#endif
import Atomics
import CSluiceXDP
import SluicePacket
import SluicePolicy

/// Where one worker's frames are; sums to the UMEM's frame count (tests check it).
public struct FrameAccounting: Sendable, Equatable {
    public var free: Int
    public var withKernelForReceive: Int
    public var inTransmit: Int
    public var total: Int
    /// Whether no frame was lost or duplicated.
    public var conserved: Bool { free + withKernelForReceive + inTransmit == total }
}

/// The rings of one side of a worker (views; copying them copies pointers only).
public struct SideRings {
    public var rx: RxRing
    public var tx: TxRing
    public var fill: FillRing
    public var completion: CompletionRing
    /// The socket's fd for wakeups and poll (-1: fake rings in tests, never kicked).
    public var fd: Int32

    public init(rx: RxRing, tx: TxRing, fill: FillRing, completion: CompletionRing, fd: Int32) {
        self.rx = rx
        self.tx = tx
        self.fill = fill
        self.completion = completion
        self.fd = fd
    }

    /// The rings of a bound socket.
    public init(socket: AFXDPSocket) {
        self.init(rx: socket.rxRing, tx: socket.txRing, fill: socket.fillRing, completion: socket.completionRing,
                  fd: socket.fd)
    }
}

/// Everything a worker loop needs, as plain values and raw views.
public struct QueueWorkerContext<Learned: LearnedAddressLookup>: @unchecked Sendable {
    public var index: Int
    public var inside: SideRings
    public var outside: SideRings
    public var area: UnsafeMutableRawPointer
    public var frameCount: Int
    public var frameSize: Int
    /// Frames kept in each fill ring.
    public var fillTarget: Int
    public var processor: PacketProcessor<Learned>
    public var counters: CounterWriter
    public var pending: PendingCounters
    public var policy: Publication<CompiledPolicy>.Reader
    public var forwarding: Publication<ForwardingSnapshot>.Reader
    /// Set by the control plane to end the loop.
    public var stop: UnsafeAtomic<Bool>
    /// poll(2) timeout when a batch found nothing (0: busy poll).
    public var idleTimeoutMilliseconds: Int32

    /// A context from its parts (Dataplane builds these from sockets; tests and benchmarks
    /// from rings in ordinary memory).
    public init(
        index: Int, inside: SideRings, outside: SideRings, area: UnsafeMutableRawPointer, frameCount: Int,
        frameSize: Int, fillTarget: Int, processor: PacketProcessor<Learned>, counters: CounterWriter,
        pending: PendingCounters, policy: Publication<CompiledPolicy>.Reader,
        forwarding: Publication<ForwardingSnapshot>.Reader, stop: UnsafeAtomic<Bool>, idleTimeoutMilliseconds: Int32
    ) {
        self.index = index
        self.inside = inside
        self.outside = outside
        self.area = area
        self.frameCount = frameCount
        self.frameSize = frameSize
        self.fillTarget = fillTarget
        self.processor = processor
        self.counters = counters
        self.pending = pending
        self.policy = policy
        self.forwarding = forwarding
        self.stop = stop
        self.idleTimeoutMilliseconds = idleTimeoutMilliseconds
    }
}

/// Monotonic nanoseconds from the coarse clock (a few ns to read; tick of about 1–4 ms,
/// plenty for idle timeouts).
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC_COARSE, &time)
    return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
}

/// Tops a fill ring up to `target` frames with the kernel. A free function taking everything
/// as parameters: a nested function capturing the loop's `allocator` would make every access
/// to it a dynamic exclusivity check (swift_beginAccess), about 10% of the loop's time.
@inline(__always)
func refillRing(
    _ rings: SideRings, _ held: inout Int, _ allocator: inout FrameAllocator, _ target: Int, _ pending: PendingCounters
) {
    let missing = target - held
    if missing > 0 {
        if allocator.available == 0 { pending.add(.fillRingStalls) }
        held += Int(rings.fill.refill(from: &allocator, limit: UInt32(missing)))
    }
}

/// The worker loop. Runs on the calling thread until `context.stop` is set; returns where
/// every frame is at the end.
public func runQueueWorker<Learned: LearnedAddressLookup>(_ context: QueueWorkerContext<Learned>) -> FrameAccounting {
    let batchSize: UInt32 = 64
    let frameMask = ~UInt64(context.frameSize - 1)
    let area = context.area
    let processor = context.processor
    let pending = context.pending
    var allocator = FrameAllocator(frameCount: context.frameCount, frameSize: context.frameSize)
    let sides = (context.inside, context.outside)
    var withKernel = (0, 0)
    var inTransmit = (0, 0)
    // Per batch, what goes out on each side: addresses and lengths (raw memory, allocated once).
    let outAddresses = UnsafeMutablePointer<UInt64>.allocate(capacity: 2 * Int(batchSize) * 2)
    let outLengths = UnsafeMutablePointer<UInt32>.allocate(capacity: 2 * Int(batchSize) * 2)
    defer {
        outAddresses.deallocate()
        outLengths.deallocate()
    }
    context.policy.start()
    context.forwarding.start()
    defer {
        context.policy.stop()
        context.forwarding.stop()
    }

    let fillTarget = context.fillTarget
    refillRing(sides.0, &withKernel.0, &allocator, fillTarget, pending)
    refillRing(sides.1, &withKernel.1, &allocator, fillTarget, pending)

    while !context.stop.load(ordering: .relaxed) {
        let policy = context.policy.acquire()
        let forwarding = context.forwarding.acquire().value
        let now = monotonicNanoseconds()
        var outCount = (0, 0)
        var received = 0
        let batchStart = sluice_cycles()

        // Completions first: the frames are free again for this batch's ICMP errors and fills.
        inTransmit.0 -= Int(sides.0.completion.reclaim(into: &allocator, limit: 2 * batchSize, frameMask: frameMask))
        inTransmit.1 -= Int(sides.1.completion.reclaim(into: &allocator, limit: 2 * batchSize, frameMask: frameMask))

        for sideIndex in 0..<2 {
            let side: Side = sideIndex == 0 ? .inside : .outside
            let rings = sideIndex == 0 ? sides.0 : sides.1
            let (count, first) = rings.rx.peek(limit: batchSize)
            guard count > 0 else { continue }
            received += Int(count)
            for offset in 0..<count {
                let descriptor = rings.rx.descriptor(first &+ offset)
                let frame = area + Int(descriptor.addr)
                let decision = processor.process(
                    frame: frame, length: Int(descriptor.len), side: side, now: now, policy: policy,
                    forwarding: forwarding)
                switch decision.action {
                case .forward(let egress):
                    let slot = egress == .inside ? outCount.0 : Int(batchSize) * 2 + outCount.1
                    outAddresses[slot] = descriptor.addr
                    outLengths[slot] = descriptor.len
                    if egress == .inside { outCount.0 += 1 } else { outCount.1 += 1 }
                case .drop:
                    allocator.free(descriptor.addr & frameMask)
                case .timeExceeded:
                    if let forwarding, let answer = allocator.allocate() {
                        let buffer = UnsafeMutableRawBufferPointer(
                            start: area + Int(answer), count: context.frameSize - Int(XSK_UMEM__DEFAULT_FRAME_HEADROOM))
                        let original = UnsafeRawBufferPointer(start: frame, count: Int(descriptor.len))
                        if let length = processor.writeTimeExceeded(
                            original: original, side: side, forwarding: forwarding, into: buffer) {
                            let slot = side == .inside ? outCount.0 : Int(batchSize) * 2 + outCount.1
                            outAddresses[slot] = answer
                            outLengths[slot] = UInt32(length)
                            if side == .inside { outCount.0 += 1 } else { outCount.1 += 1 }
                            pending.add(.icmpErrorsSent)
                        } else {
                            allocator.free(answer)
                        }
                    }
                    allocator.free(descriptor.addr & frameMask)
                case .reset(_, let bothEnds):
                    // One RST per end, each on its own side: a received frame adds at most one frame
                    // per side, so the out slots (2 × batch per side) still suffice.
                    if let forwarding {
                        let original = UnsafeRawBufferPointer(start: frame, count: Int(descriptor.len))
                        for end in 0..<(bothEnds ? 2 : 1) {
                            guard let answer = allocator.allocate() else { break }
                            let buffer = UnsafeMutableRawBufferPointer(
                                start: area + Int(answer),
                                count: context.frameSize - Int(XSK_UMEM__DEFAULT_FRAME_HEADROOM))
                            if let (length, egress) = processor.writeReset(
                                end == 0 ? .sender : .receiver, original: original, side: side,
                                forwarding: forwarding, into: buffer) {
                                let slot = egress == .inside ? outCount.0 : Int(batchSize) * 2 + outCount.1
                                outAddresses[slot] = answer
                                outLengths[slot] = UInt32(length)
                                if egress == .inside { outCount.0 += 1 } else { outCount.1 += 1 }
                                pending.add(.tcpResetsSent)
                            } else {
                                allocator.free(answer)
                            }
                        }
                    }
                    allocator.free(descriptor.addr & frameMask)
                }
            }
            rings.rx.release(count)
            if sideIndex == 0 { withKernel.0 -= Int(count) } else { withKernel.1 -= Int(count) }
        }

        // Transmit what this batch produced, per side. A full tx ring means the kernel has not
        // sent what it holds yet: kick it and take back completions a bounded number of times
        // (back-pressure, as the C AF_XDP loop does) before dropping frames already judged.
        for sideIndex in 0..<2 {
            let rings = sideIndex == 0 ? sides.0 : sides.1
            let wanted = sideIndex == 0 ? outCount.0 : outCount.1
            guard wanted > 0 else { continue }
            let base = sideIndex == 0 ? 0 : Int(batchSize) * 2
            var (reserved, first) = rings.tx.reserve(limit: UInt32(wanted))
            var attempts = 0
            while reserved == 0 && rings.fd >= 0 && attempts < 64 {
                attempts += 1
                pending.add(.txRingStalls)
                System.drainTransmit(rings.fd)
                let done = Int(rings.completion.reclaim(into: &allocator, limit: 2 * batchSize, frameMask: frameMask))
                if sideIndex == 0 { inTransmit.0 -= done } else { inTransmit.1 -= done }
                (reserved, first) = rings.tx.reserve(limit: UInt32(wanted))
            }
            for offset in 0..<Int(reserved) {
                rings.tx.setDescriptor(first &+ UInt32(offset), address: outAddresses[base + offset],
                                       length: outLengths[base + offset])
            }
            if reserved > 0 { rings.tx.submit(reserved) }
            if Int(reserved) < wanted {
                if rings.fd < 0 { pending.add(.txRingStalls) }
                pending.add(.droppedTxRingFull, UInt64(wanted - Int(reserved)))
                for offset in Int(reserved)..<wanted { allocator.free(outAddresses[base + offset] & frameMask) }
            }
            pending.add(.transmittedPackets, UInt64(reserved))
            if sideIndex == 0 { inTransmit.0 += Int(reserved) } else { inTransmit.1 += Int(reserved) }
            // Copy mode transmits only from sendto(); with need_wakeup the kernel says when.
            if reserved > 0 && rings.fd >= 0 && rings.tx.needsWakeup {
                pending.add(.txWakeups)
                System.drainTransmit(rings.fd)
            }
        }
        // Frames stuck in tx while the kernel waits for a kick (a previous kick was refused).
        if outCount.0 == 0 && inTransmit.0 > 0 && sides.0.fd >= 0 && sides.0.tx.needsWakeup {
            System.drainTransmit(sides.0.fd)
        }
        if outCount.1 == 0 && inTransmit.1 > 0 && sides.1.fd >= 0 && sides.1.tx.needsWakeup {
            System.drainTransmit(sides.1.fd)
        }

        refillRing(sides.0, &withKernel.0, &allocator, fillTarget, pending)
        refillRing(sides.1, &withKernel.1, &allocator, fillTarget, pending)
        // need_wakeup: the kernel asks to be told about new fill entries (poll does it when idle).
        if received > 0 && sides.0.fd >= 0 {
            if sides.0.fill.needsWakeup {
                pending.add(.rxWakeups)
                System.kickReceive(sides.0.fd)
            }
            if sides.1.fill.needsWakeup {
                pending.add(.rxWakeups)
                System.kickReceive(sides.1.fd)
            }
        }
        if received > 0 {
            pending.add(.batches)
            pending.add(.workerBusyCycles, sluice_cycles() &- batchStart)
        }
        context.counters.flush(pending.slots)

        if received == 0 {
            if context.idleTimeoutMilliseconds > 0 && sides.0.fd >= 0 {
                var descriptors = (pollfd(fd: sides.0.fd, events: Int16(POLLIN), revents: 0),
                                   pollfd(fd: sides.1.fd, events: Int16(POLLIN), revents: 0))
                _ = withUnsafeMutableBytes(of: &descriptors) { raw in
                    poll(raw.baseAddress!.assumingMemoryBound(to: pollfd.self), 2, context.idleTimeoutMilliseconds)
                }
            } else if sides.0.fd >= 0 {
                // Busy polling never sleeps in poll(2), which would do the wakeup: zero-copy
                // drivers wait for it before they use new fill entries.
                if sides.0.fill.needsWakeup { System.kickReceive(sides.0.fd) }
                if sides.1.fill.needsWakeup { System.kickReceive(sides.1.fd) }
            }
        }
    }
    context.counters.flush(pending.slots)
    return FrameAccounting(free: allocator.available, withKernelForReceive: withKernel.0 + withKernel.1,
                           inTransmit: inTransmit.0 + inTransmit.1, total: context.frameCount)
}

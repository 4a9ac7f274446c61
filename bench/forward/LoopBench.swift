// The worker loop against in-memory rings, for forward-bench: the kernel's side of the inside
// fill/rx rings and the outside tx/completion rings is played by the calling thread.
import AllocCounter
import Atomics
import CSluiceXDP
import Foundation
import SluiceDataplane
import SluicePolicy

/// The four rings of one side in ordinary memory, with the kernel's half of each.
final class MemorySide: @unchecked Sendable {
    let size: UInt32
    let indexes = UnsafeMutablePointer<UInt32>.allocate(capacity: 12)
    let fill = UnsafeMutablePointer<xsk_ring_prod>.allocate(capacity: 1)
    let rx = UnsafeMutablePointer<xsk_ring_cons>.allocate(capacity: 1)
    let tx = UnsafeMutablePointer<xsk_ring_prod>.allocate(capacity: 1)
    let completion = UnsafeMutablePointer<xsk_ring_cons>.allocate(capacity: 1)
    let addresses: UnsafeMutablePointer<UInt64>  // fill entries, then completion entries
    let descriptors: UnsafeMutablePointer<xdp_desc>  // rx entries, then tx entries

    init(size: UInt32) {
        self.size = size
        indexes.initialize(repeating: 0, count: 12)
        addresses = .allocate(capacity: 2 * Int(size))
        descriptors = .allocate(capacity: 2 * Int(size))
        fill.initialize(to: xsk_ring_prod(cached_prod: 0, cached_cons: size, mask: size - 1, size: size,
                                          producer: indexes, consumer: indexes + 1,
                                          ring: UnsafeMutableRawPointer(addresses), flags: indexes + 2))
        rx.initialize(to: xsk_ring_cons(cached_prod: 0, cached_cons: 0, mask: size - 1, size: size,
                                        producer: indexes + 3, consumer: indexes + 4,
                                        ring: UnsafeMutableRawPointer(descriptors), flags: indexes + 5))
        tx.initialize(to: xsk_ring_prod(cached_prod: 0, cached_cons: size, mask: size - 1, size: size,
                                        producer: indexes + 6, consumer: indexes + 7,
                                        ring: UnsafeMutableRawPointer(descriptors + Int(size)), flags: indexes + 8))
        completion.initialize(to: xsk_ring_cons(cached_prod: 0, cached_cons: 0, mask: size - 1, size: size,
                                                producer: indexes + 9, consumer: indexes + 10,
                                                ring: UnsafeMutableRawPointer(addresses + Int(size)),
                                                flags: indexes + 11))
    }

    func index(_ slot: Int) -> UnsafeAtomic<UInt32> {
        UnsafeAtomic(
            at: UnsafeMutableRawPointer(indexes + slot).assumingMemoryBound(to: UnsafeAtomic<UInt32>.Storage.self))
    }

    var rings: SideRings {
        SideRings(rx: RxRing(ring: rx), tx: TxRing(ring: tx), fill: FillRing(ring: fill),
                  completion: CompletionRing(ring: completion), fd: -1)
    }
}

final class LoopBench {
    let rig: Rig
    let policy: CompiledPolicy
    let frames: [[UInt8]]

    init(rig: Rig, policy: CompiledPolicy, frames: [[UInt8]]) {
        self.rig = rig
        self.policy = policy
        self.frames = frames
    }

    func run(packets target: Int) -> (mpps: Double, cyclesPerPacket: Double, allocationsPerPacket: Double) {
        let frameCount = 4096, frameSize = 2048
        let area = UnsafeMutableRawPointer.allocate(byteCount: frameCount * frameSize, alignment: 4096)
        let inside = MemorySide(size: 1024), outside = MemorySide(size: 1024)
        let policyPublication = Publication<CompiledPolicy>(initial: policy, generation: 1, workerCount: 1)
        let forwarding = Publication<ForwardingSnapshot>(initial: snapshot, generation: 1, workerCount: 1)
        let blocks = DataplaneCounterBlocks(workerCount: 1)
        let stop = UnsafeAtomic<Bool>.create(false)
        let context = QueueWorkerContext(
            index: 0, inside: inside.rings, outside: outside.rings, area: area, frameCount: frameCount,
            frameSize: frameSize, fillTarget: 1024, processor: rig.processor, counters: blocks.writer(worker: 0),
            pending: rig.pending, policy: policyPublication.reader(worker: 0), forwarding: forwarding.reader(worker: 0),
            stop: stop, idleTimeoutMilliseconds: 0)
        final class Box: @unchecked Sendable { var cycles: UInt64 = 0 }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let start = alloc_counter_cycles()
            _ = runQueueWorker(context)
            box.cycles = alloc_counter_cycles() - start
            done.signal()
        }
        thread.start()
        // Warm up: open every flow once, then count.
        var sent = 0
        var frameIndex = 0
        let clock = ContinuousClock()
        var startTime = clock.now
        var allocationsAtStart = alloc_counter_total()
        var startCycles: UInt64 = 0
        var drainer = rig.events.consumer
        var measuredFrom = 0
        while sent < target + frames.count {
            if sent >= frames.count && measuredFrom == 0 {
                measuredFrom = sent
                startTime = clock.now
                allocationsAtStart = alloc_counter_total()
                startCycles = alloc_counter_cycles()
            }
            // Kernel, inside: fill → rx.
            let fillProducer = inside.index(0).load(ordering: .acquiring)
            var fillConsumer = inside.index(1).load(ordering: .relaxed)
            var rxProducer = inside.index(3).load(ordering: .relaxed)
            let rxConsumer = inside.index(4).load(ordering: .acquiring)
            while fillConsumer != fillProducer && rxProducer &- rxConsumer < inside.size {
                let address = inside.addresses[Int(fillConsumer & (inside.size - 1))]
                fillConsumer &+= 1
                let frame = frames[frameIndex]
                frameIndex = frameIndex + 1 == frames.count ? 0 : frameIndex + 1
                frame.withUnsafeBytes { (area + Int(address)).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                inside.descriptors[Int(rxProducer & (inside.size - 1))] =
                    xdp_desc(addr: address, len: UInt32(frame.count), options: 0)
                rxProducer &+= 1
                sent += 1
            }
            inside.index(1).store(fillConsumer, ordering: .releasing)
            inside.index(3).store(rxProducer, ordering: .releasing)
            // Kernel, both sides: tx → completion (no array literal here: it would allocate).
            func complete(_ side: MemorySide) {
                let txProducer = side.index(6).load(ordering: .acquiring)
                var txConsumer = side.index(7).load(ordering: .relaxed)
                var completionProducer = side.index(9).load(ordering: .relaxed)
                let completionConsumer = side.index(10).load(ordering: .acquiring)
                while txConsumer != txProducer && completionProducer &- completionConsumer < side.size {
                    side.addresses[Int(side.size) + Int(completionProducer & (side.size - 1))] =
                        side.descriptors[Int(side.size) + Int(txConsumer & (side.size - 1))].addr
                    txConsumer &+= 1
                    completionProducer &+= 1
                }
                side.index(7).store(txConsumer, ordering: .releasing)
                side.index(9).store(completionProducer, ordering: .releasing)
            }
            complete(outside)
            complete(inside)
            while drainer.pop() != nil {}
        }
        // Let the worker finish what it has, then stop it.
        while inside.index(3).load(ordering: .acquiring) != inside.index(4).load(ordering: .acquiring) {}
        let elapsed = clock.now - startTime
        let cycles = alloc_counter_cycles() - startCycles
        let allocations = alloc_counter_total() - allocationsAtStart
        stop.store(true, ordering: .relaxed)
        done.wait()
        let measured = Double(sent - measuredFrom)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        _ = box.cycles
        return (measured / seconds / 1e6, Double(cycles) / measured, Double(allocations) / measured)
    }
}

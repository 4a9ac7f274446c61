// The worker loop against in-memory rings (SluiceDataplaneTesting's MemoryKernelSide), for
// forward-bench: the kernel's side of the inside fill/rx rings and of both sides' tx/completion
// rings is played by the calling thread.
import AllocCounter
import Atomics
import Foundation
import SluiceDataplane
import SluiceDataplaneTesting
import SluicePolicy

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
        let inside = MemoryKernelSide(size: 1024), outside = MemoryKernelSide(size: 1024)
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
            sent += inside.receive(limit: .max, area: area) { slot in
                let frame = frames[frameIndex]
                frameIndex = frameIndex + 1 == frames.count ? 0 : frameIndex + 1
                frame.withUnsafeBytes { slot.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                return frame.count
            }
            // Kernel, both sides: tx → completion.
            _ = outside.transmit(area: area) { _ in }
            _ = inside.transmit(area: area) { _ in }
            while drainer.pop() != nil {}
        }
        // Let the worker finish what it has, then stop it.
        while !inside.rxDrained {}
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

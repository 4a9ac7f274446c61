// The real worker loop (runQueueWorker) against a fake kernel on another thread: for each side,
// fill/rx/tx/completion rings in ordinary memory (SluiceDataplaneTesting's MemoryKernelSide), driven
// with acquire/release atomics the way the kernel drives real ones. A million frames go in on both
// sides (allowed, denied, replies, unsolicited, garbage); the test checks that forwarded frames leave
// by the right side, rewritten, that counters add up, and that every UMEM frame is accounted for at
// the end.
// No root.

import Atomics
import CSluiceXDP
import Foundation
import SluiceDataplaneTesting
import SluicePacket
import SluicePolicy
import Testing
@testable import SluiceDataplane

@Suite struct QueueWorkerTests {
    @Test func aMillionFramesThroughTheWorkerLoopConserveTheUMEM() throws {
        let frameCount = 2048
        let frameSize = 2048
        let area = UnsafeMutableRawPointer.allocate(byteCount: frameCount * frameSize, alignment: 4096)
        defer { area.deallocate() }
        let inside = MemoryKernelSide(size: 512)
        let outside = MemoryKernelSide(size: 512)
        let harness = ProcessorHarness(policy: try compilePolicy(Policies.web))
        let policy = Publication<CompiledPolicy>(initial: harness.policy, generation: 1, workerCount: 1)
        let forwarding = Publication<ForwardingSnapshot>(initial: Topology.snapshot(), generation: 1, workerCount: 1)
        let blocks = DataplaneCounterBlocks(workerCount: 1)
        let stop = UnsafeAtomic<Bool>.create(false)
        defer { stop.destroy() }
        let pending = PendingCounters()
        let events = SPSCRing<DataplaneEvent>(capacity: 1024)
        let neighbours = SPSCRing<NeighbourRequest>(capacity: 16)
        let processor = PacketProcessor(flows: harness.flows.handle, learned: NoLearnedAddresses(), counters: pending,
                                        events: events.producer, neighbourRequests: neighbours.producer, worker: 0)
        let context = QueueWorkerContext(
            index: 0, inside: inside.rings, outside: outside.rings, area: area, frameCount: frameCount,
            frameSize: frameSize, fillTarget: 512, processor: processor, counters: blocks.writer(worker: 0),
            pending: pending, policy: policy.reader(worker: 0), forwarding: forwarding.reader(worker: 0), stop: stop,
            idleTimeoutMilliseconds: 0)
        final class Result: @unchecked Sendable { var accounting: FrameAccounting? }
        let result = Result()
        let done = DispatchSemaphore(value: 0)
        Thread {
            result.accounting = runQueueWorker(context)
            done.signal()
        }.start()

        // 256 client flows to port 53 (allowed), port 123 (denied), their replies, unsolicited
        // inbound, and runt frames.
        let requests = (0..<256).map { Frames.udp(sourcePort: UInt16(20000 + $0)).bytes(payload: [0, 0]) }
        let denied = Frames.udp(port: 123).bytes(payload: [0, 0])
        let replies = (0..<256).map { Frames.reply(Frames.udp(sourcePort: UInt16(20000 + $0))).bytes(payload: [0, 0]) }
        var unsolicited = Frames.reply(Frames.udp(sourcePort: 9))
        unsolicited.tuple.sourcePort = 54
        let unsolicitedBytes = unsolicited.bytes(payload: [0, 0])
        var sent = (inside: 0, outside: 0)
        var expectedForward = (toOutside: 0, toInside: 0)
        var seenOutside = 0
        var seenInside = 0
        var badRewrite = 0
        var sequence = 0
        let target = 1_000_000
        func copy(_ bytes: [UInt8], _ frame: UnsafeMutableRawPointer) -> Int {
            bytes.withUnsafeBytes { frame.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            return bytes.count
        }
        var idleRounds = 0
        var allowedSent = 0
        while idleRounds < 1_000 {
            var progress = 0
            if sent.inside + sent.outside < target {
                progress += inside.receive(limit: 48, area: area) { frame in
                    sequence += 1
                    sent.inside += 1
                    switch sequence % 8 {
                    case 0: return copy(denied, frame)
                    case 1: return copy([1, 2, 3], frame)
                    default:
                        expectedForward.toOutside += 1
                        allowedSent += 1
                        return copy(requests[allowedSent % 256], frame)
                    }
                }
                // Replies only for flows already opened (the first 256 requests open them all).
                if sent.inside > 2048 {
                    progress += outside.receive(limit: 48, area: area) { frame in
                        sequence += 1
                        sent.outside += 1
                        if sequence % 5 == 0 { return copy(unsolicitedBytes, frame) }
                        expectedForward.toInside += 1
                        return copy(replies[sequence % 256], frame)
                    }
                }
            }
            progress += outside.transmit(area: area) { frame in
                seenOutside += 1
                if MACAddress(from: frame, at: 0) != Topology.routerMAC { badRewrite += 1 }
            }
            progress += inside.transmit(area: area) { frame in
                seenInside += 1
                if MACAddress(from: frame, at: 0) != Topology.clientMAC { badRewrite += 1 }
            }
            // Done when everything was sent, the worker consumed both rx rings and nothing moves.
            let drained = inside.rxDrained && outside.rxDrained
            if progress == 0 && drained && sent.inside + sent.outside >= target {
                idleRounds += 1
                usleep(100)
            } else {
                idleRounds = 0
            }
        }
        stop.store(true, ordering: .relaxed)
        done.wait()
        let accounting = try #require(result.accounting)
        #expect(accounting.conserved, "\(accounting)")
        #expect(accounting.withKernelForReceive == inside.heldForReceive + outside.heldForReceive)
        #expect(accounting.inTransmit == inside.heldForTransmit + outside.heldForTransmit)
        let summary = "forwarded \(seenOutside)/\(expectedForward.toOutside) out, "
            + "\(seenInside)/\(expectedForward.toInside) in"
        #expect(seenOutside == expectedForward.toOutside && seenInside == expectedForward.toInside, "\(summary)")
        #expect(badRewrite == 0)
        let counters = blocks.snapshot()
        #expect(counters[.receivedPackets] == UInt64(sent.inside + sent.outside))
        #expect(counters[.transmittedPackets] == UInt64(seenOutside + seenInside))
        #expect(counters[.droppedMalformed]! > 0 && counters[.deniedPackets]! > 0 && counters[.droppedNoFlow]! > 0)
        #expect(counters[.flowsOpened] == 256)
        pending.deallocate()
    }
}

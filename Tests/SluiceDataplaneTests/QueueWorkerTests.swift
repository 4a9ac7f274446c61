// The real worker loop (runQueueWorker) against a fake kernel on another thread: for each side,
// fill/rx/tx/completion rings in ordinary memory, driven with acquire/release atomics the way the
// kernel drives real ones. A million frames go in on both sides (allowed, denied, replies,
// unsolicited, garbage); the test checks that forwarded frames leave by the right side,
// rewritten, that counters add up, and that every UMEM frame is accounted for at the end.
// No root.

import Atomics
import CSluiceXDP
import Foundation
import SluicePacket
import SluicePolicy
import Testing
@testable import SluiceDataplane

/// The kernel's half of the four rings of one side.
final class FakeKernelSide: @unchecked Sendable {
    let size: UInt32
    let fill = UnsafeMutablePointer<xsk_ring_prod>.allocate(capacity: 1)
    let rx = UnsafeMutablePointer<xsk_ring_cons>.allocate(capacity: 1)
    let tx = UnsafeMutablePointer<xsk_ring_prod>.allocate(capacity: 1)
    let completion = UnsafeMutablePointer<xsk_ring_cons>.allocate(capacity: 1)
    /// producer, consumer, flags for each ring: fill 0-2, rx 3-5, tx 6-8, completion 9-11.
    let indexes = UnsafeMutablePointer<UInt32>.allocate(capacity: 12)
    let fillEntries: UnsafeMutablePointer<UInt64>
    let completionEntries: UnsafeMutablePointer<UInt64>
    let rxEntries: UnsafeMutablePointer<xdp_desc>
    let txEntries: UnsafeMutablePointer<xdp_desc>

    init(size: UInt32) {
        self.size = size
        indexes.initialize(repeating: 0, count: 12)
        fillEntries = .allocate(capacity: Int(size))
        completionEntries = .allocate(capacity: Int(size))
        rxEntries = .allocate(capacity: Int(size))
        txEntries = .allocate(capacity: Int(size))
        // libxdp's convention: a producer's cached consumer starts one ring ahead.
        fill.initialize(to: xsk_ring_prod(cached_prod: 0, cached_cons: size, mask: size - 1, size: size,
                                          producer: indexes, consumer: indexes + 1,
                                          ring: UnsafeMutableRawPointer(fillEntries), flags: indexes + 2))
        rx.initialize(to: xsk_ring_cons(cached_prod: 0, cached_cons: 0, mask: size - 1, size: size,
                                        producer: indexes + 3, consumer: indexes + 4,
                                        ring: UnsafeMutableRawPointer(rxEntries), flags: indexes + 5))
        tx.initialize(to: xsk_ring_prod(cached_prod: 0, cached_cons: size, mask: size - 1, size: size,
                                        producer: indexes + 6, consumer: indexes + 7,
                                        ring: UnsafeMutableRawPointer(txEntries), flags: indexes + 8))
        completion.initialize(to: xsk_ring_cons(cached_prod: 0, cached_cons: 0, mask: size - 1, size: size,
                                                producer: indexes + 9, consumer: indexes + 10,
                                                ring: UnsafeMutableRawPointer(completionEntries), flags: indexes + 11))
    }

    deinit {
        for pointer in [UnsafeMutableRawPointer(fill), UnsafeMutableRawPointer(rx), UnsafeMutableRawPointer(tx),
                        UnsafeMutableRawPointer(completion), UnsafeMutableRawPointer(indexes),
                        UnsafeMutableRawPointer(fillEntries), UnsafeMutableRawPointer(completionEntries),
                        UnsafeMutableRawPointer(rxEntries), UnsafeMutableRawPointer(txEntries)] {
            pointer.deallocate()
        }
    }

    func index(_ slot: Int) -> UnsafeAtomic<UInt32> {
        UnsafeAtomic(
            at: UnsafeMutableRawPointer(indexes + slot).assumingMemoryBound(to: UnsafeAtomic<UInt32>.Storage.self))
    }

    var rings: SideRings {
        SideRings(rx: RxRing(ring: rx), tx: TxRing(ring: tx), fill: FillRing(ring: fill),
                  completion: CompletionRing(ring: completion), fd: -1)
    }

    /// Moves up to `limit` frames from the fill ring into the rx ring, `write` filling each.
    func receive(limit: Int, area: UnsafeMutableRawPointer, write: (UnsafeMutableRawPointer) -> Int) -> Int {
        let fillProducer = index(0).load(ordering: .acquiring)
        var fillConsumer = index(1).load(ordering: .relaxed)
        var rxProducer = index(3).load(ordering: .relaxed)
        let rxConsumer = index(4).load(ordering: .acquiring)
        var delivered = 0
        while delivered < limit && fillConsumer != fillProducer && rxProducer &- rxConsumer < size {
            let address = fillEntries[Int(fillConsumer & (size - 1))]
            fillConsumer &+= 1
            let length = write(area + Int(address))
            rxEntries[Int(rxProducer & (size - 1))] = xdp_desc(addr: address, len: UInt32(length), options: 0)
            rxProducer &+= 1
            delivered += 1
        }
        index(1).store(fillConsumer, ordering: .releasing)
        index(3).store(rxProducer, ordering: .releasing)
        return delivered
    }

    /// Takes what the worker transmitted (passing each frame to `sent`) and completes it.
    func transmit(area: UnsafeMutableRawPointer, sent: (UnsafeRawBufferPointer) -> Void) -> Int {
        let txProducer = index(6).load(ordering: .acquiring)
        var txConsumer = index(7).load(ordering: .relaxed)
        var completionProducer = index(9).load(ordering: .relaxed)
        let completionConsumer = index(10).load(ordering: .acquiring)
        var count = 0
        while txConsumer != txProducer && completionProducer &- completionConsumer < size {
            let descriptor = txEntries[Int(txConsumer & (size - 1))]
            txConsumer &+= 1
            sent(UnsafeRawBufferPointer(start: area + Int(descriptor.addr), count: Int(descriptor.len)))
            completionEntries[Int(completionProducer & (size - 1))] = descriptor.addr
            completionProducer &+= 1
            count += 1
        }
        index(7).store(txConsumer, ordering: .releasing)
        index(9).store(completionProducer, ordering: .releasing)
        return count
    }

    /// Frames the kernel side holds: in fill and rx (receive side), in tx and completion (transmit side).
    var heldForReceive: Int {
        Int(index(0).load(ordering: .acquiring) &- index(1).load(ordering: .acquiring))
            + Int(index(3).load(ordering: .acquiring) &- index(4).load(ordering: .acquiring))
    }
    var heldForTransmit: Int {
        Int(index(6).load(ordering: .acquiring) &- index(7).load(ordering: .acquiring))
            + Int(index(9).load(ordering: .acquiring) &- index(10).load(ordering: .acquiring))
    }
}

@Suite struct QueueWorkerTests {
    @Test func aMillionFramesThroughTheWorkerLoopConserveTheUMEM() throws {
        let frameCount = 2048
        let frameSize = 2048
        let area = UnsafeMutableRawPointer.allocate(byteCount: frameCount * frameSize, alignment: 4096)
        defer { area.deallocate() }
        let inside = FakeKernelSide(size: 512)
        let outside = FakeKernelSide(size: 512)
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
            let drained = inside.index(3).load(ordering: .acquiring) == inside.index(4).load(ordering: .acquiring)
                && outside.index(3).load(ordering: .acquiring) == outside.index(4).load(ordering: .acquiring)
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

// The real worker loop (runQueueWorker) against a fake kernel on another thread: for each side,
// fill/rx/tx/completion rings in ordinary memory (SluiceDataplaneTesting's MemoryKernelSide), driven
// with acquire/release atomics the way the kernel drives real ones. A million frames go in on both
// sides (allowed, denied, replies, unsolicited, garbage); the test checks that forwarded frames leave
// by the right side, rewritten, that counters add up, and that every UMEM frame is accounted for at
// the end. A second test sends a frame whose TTL runs out and a denied SYN (resets on) and checks
// the worker's own answers, ICMP time exceeded and RST, leave by the arrival side to the sender.
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
    /// The worker loop on its own thread over in-memory rings, with the test topology and a policy.
    final class LoopRig: @unchecked Sendable {
        let frameCount = 2048
        let frameSize = 2048
        let area: UnsafeMutableRawPointer
        let inside = MemoryKernelSide(size: 512)
        let outside = MemoryKernelSide(size: 512)
        let blocks = DataplaneCounterBlocks(workerCount: 1)
        let stop = UnsafeAtomic<Bool>.create(false)
        let pending = PendingCounters()
        let events = SPSCRing<DataplaneEvent>(capacity: 1024)
        let neighbours = SPSCRing<NeighbourRequest>(capacity: 16)
        let harness: ProcessorHarness
        let policy: Publication<CompiledPolicy>
        let forwarding = Publication<ForwardingSnapshot>(initial: Topology.snapshot(), generation: 1, workerCount: 1)
        var accounting: FrameAccounting?
        let done = DispatchSemaphore(value: 0)

        init(policy text: String, resetDeniedTCP: Bool = false) throws {
            area = UnsafeMutableRawPointer.allocate(byteCount: frameCount * frameSize, alignment: 4096)
            harness = ProcessorHarness(policy: try compilePolicy(text))
            policy = Publication<CompiledPolicy>(initial: harness.policy, generation: 1, workerCount: 1)
            let processor = PacketProcessor(
                flows: harness.flows.handle, learned: NoLearnedAddresses(), counters: pending, events: events.producer,
                neighbourRequests: neighbours.producer, worker: 0, resetDeniedTCP: resetDeniedTCP)
            let context = QueueWorkerContext(
                index: 0, inside: inside.rings, outside: outside.rings, area: area, frameCount: frameCount,
                frameSize: frameSize, fillTarget: 512, processor: processor, counters: blocks.writer(worker: 0),
                pending: pending, policy: policy.reader(worker: 0), forwarding: forwarding.reader(worker: 0),
                stop: stop, idleTimeoutMilliseconds: 0)
            Thread {
                self.accounting = runQueueWorker(context)
                self.done.signal()
            }.start()
        }

        /// Stops the worker and returns where its frames are.
        func finish() -> FrameAccounting? {
            stop.store(true, ordering: .relaxed)
            done.wait()
            return accounting
        }

        deinit {
            stop.destroy()
            pending.deallocate()
            area.deallocate()
        }
    }

    /// The answers the worker writes itself (ICMP time exceeded, TCP resets) are re-parsed from the
    /// received frame in the loop and leave by the arrival side, addressed to the sender.
    @Test func timeExceededAndResetsLeaveByTheArrivalSide() throws {
        let rig = try LoopRig(policy: Policies.web, resetDeniedTCP: true)
        let expiring = Frames.udp(ttl: 1).bytes(payload: [0, 0])
        let deniedSYN = Frames.tcp(port: 22, flags: .syn).bytes(payload: [])
        var queued = [expiring, deniedSYN]
        var answers: [ParsedPacket] = []
        var leftOutside = 0
        let deadline = ContinuousClock.now + .seconds(10)
        while answers.count < 2 && ContinuousClock.now < deadline {
            _ = rig.inside.receive(limit: queued.count, area: rig.area) { frame in
                let bytes = queued.removeFirst()
                bytes.withUnsafeBytes { frame.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                return bytes.count
            }
            _ = rig.inside.transmit(area: rig.area) { frame in
                if let packet = try? PacketParser.parse(frame) { answers.append(packet) }
                #expect(MACAddress(from: frame, at: 0) == Topology.clientMAC)
            }
            _ = rig.outside.transmit(area: rig.area) { _ in leftOutside += 1 }
            usleep(100)
        }
        let accounting = try #require(rig.finish())
        #expect(accounting.conserved, "\(accounting)")
        #expect(leftOutside == 0)
        let icmp = try #require(answers.first { $0.icmp != nil })
        #expect(icmp.icmp?.type == 11 && icmp.tuple.destination == Topology.client)
        #expect(icmp.icmp?.embedded?.tuple == Frames.udp().tuple)
        let reset = try #require(answers.first { $0.tuple.protocolNumber == IPProtocolNumber.tcp })
        #expect(reset.tcpFlags.contains(.rst) && reset.tuple == Frames.tcp(port: 22, flags: .syn).tuple.reversed())
        let counters = rig.blocks.snapshot()
        #expect(counters[.icmpErrorsSent] == 1 && counters[.tcpResetsSent] == 1)
    }

    @Test func aMillionFramesThroughTheWorkerLoopConserveTheUMEM() throws {
        let rig = try LoopRig(policy: Policies.web)
        let (inside, outside, area) = (rig.inside, rig.outside, rig.area)

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
        let accounting = try #require(rig.finish())
        #expect(accounting.conserved, "\(accounting)")
        #expect(accounting.withKernelForReceive == inside.heldForReceive + outside.heldForReceive)
        #expect(accounting.inTransmit == inside.heldForTransmit + outside.heldForTransmit)
        let summary = "forwarded \(seenOutside)/\(expectedForward.toOutside) out, "
            + "\(seenInside)/\(expectedForward.toInside) in"
        #expect(seenOutside == expectedForward.toOutside && seenInside == expectedForward.toInside, "\(summary)")
        #expect(badRewrite == 0)
        let counters = rig.blocks.snapshot()
        #expect(counters[.receivedPackets] == UInt64(sent.inside + sent.outside))
        #expect(counters[.transmittedPackets] == UInt64(seenOutside + seenInside))
        #expect(counters[.droppedMalformed]! > 0 && counters[.deniedPackets]! > 0 && counters[.droppedNoFlow]! > 0)
        #expect(counters[.flowsOpened] == 256)
    }
}

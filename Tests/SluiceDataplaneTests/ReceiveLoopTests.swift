// The receive loop against a fake kernel: rings in ordinary memory, driven by this test the
// way the kernel drives real ones (take fill entries, write frames, publish rx descriptors).
// Runs without root. Proves that frames are conserved and never handed out twice over a
// million packets, and that every frame reaches the handler intact.

import CSluiceXDP
import SluicePacket
import Testing
@testable import SluiceDataplane

/// The kernel's side of one fill ring and one rx ring, over memory this test owns.
final class FakeKernelQueue {
    let size: UInt32
    let frameCount: Int
    let frameSize: Int
    let area: UnsafeMutableRawPointer
    let fill = UnsafeMutablePointer<xsk_ring_prod>.allocate(capacity: 1)
    let rx = UnsafeMutablePointer<xsk_ring_cons>.allocate(capacity: 1)
    let indexes = UnsafeMutablePointer<UInt32>.allocate(capacity: 6)  // fill prod/cons/flags, rx prod/cons/flags
    let fillEntries: UnsafeMutablePointer<UInt64>
    let rxEntries: UnsafeMutablePointer<xdp_desc>
    /// Which frames the kernel holds (taken from fill and not yet released from rx).
    var held: [Bool]
    var rxReleasedUpTo: UInt32 = 0
    var doubleHandOuts = 0

    init(size: UInt32, frameCount: Int, frameSize: Int) {
        self.size = size
        self.frameCount = frameCount
        self.frameSize = frameSize
        area = .allocate(byteCount: frameCount * frameSize, alignment: 4096)
        indexes.initialize(repeating: 0, count: 6)
        fillEntries = .allocate(capacity: Int(size))
        rxEntries = .allocate(capacity: Int(size))
        held = Array(repeating: false, count: frameCount)
        // What libxdp's ring setup does: a producer's cached consumer starts one ring ahead.
        fill.initialize(to: xsk_ring_prod(
            cached_prod: 0, cached_cons: size, mask: size - 1, size: size, producer: indexes, consumer: indexes + 1,
            ring: UnsafeMutableRawPointer(fillEntries), flags: indexes + 2))
        rx.initialize(to: xsk_ring_cons(
            cached_prod: 0, cached_cons: 0, mask: size - 1, size: size, producer: indexes + 3, consumer: indexes + 4,
            ring: UnsafeMutableRawPointer(rxEntries), flags: indexes + 5))
    }

    deinit {
        area.deallocate()
        fill.deallocate()
        rx.deallocate()
        indexes.deallocate()
        fillEntries.deallocate()
        rxEntries.deallocate()
    }

    var framesInFillRing: Int { Int(indexes[0] &- indexes[1]) }
    var framesInRxRing: Int { Int(indexes[3] &- indexes[4]) }

    /// Receives up to `limit` frames: each from the fill ring into the rx ring, with `write`
    /// filling the frame's bytes. Returns how many.
    func receive(limit: Int, write: (UnsafeMutableRawBufferPointer, Int) -> Int) -> Int {
        // Frames the consumer released since last time go back to the consumer's side.
        while rxReleasedUpTo != indexes[4] {
            let address = rxEntries[Int(rxReleasedUpTo & (size - 1))].addr
            held[Int(address) / frameSize] = false
            rxReleasedUpTo &+= 1
        }
        var delivered = 0
        while delivered < limit, indexes[0] != indexes[1], indexes[3] &- indexes[4] < size {
            let address = fillEntries[Int(indexes[1] & (size - 1))]
            indexes[1] &+= 1
            let frameIndex = Int(address) / frameSize
            if held[frameIndex] { doubleHandOuts += 1 }
            held[frameIndex] = true
            let length = write(UnsafeMutableRawBufferPointer(start: area + Int(address), count: frameSize), delivered)
            rxEntries[Int(indexes[3] & (size - 1))] = xdp_desc(addr: address, len: UInt32(length), options: 0)
            indexes[3] &+= 1
            delivered += 1
        }
        return delivered
    }
}

@Suite struct ReceiveLoopTests {
    @Test func framesAreConservedOverAMillionPackets() {
        let frameCount = 512
        let kernel = FakeKernelQueue(size: 256, frameCount: frameCount, frameSize: 2048)
        var loop = ReceiveLoop(
            rx: RxRing(ring: kernel.rx), fill: FillRing(ring: kernel.fill), area: kernel.area, frameCount: frameCount,
            frameSize: 2048, wakeFD: -1, fillTarget: 256)
        let template = FrameBuilder(tuple: FiveTuple(
            family: .v4, protocolNumber: 17, source: 0x0A00_0001, destination: 0x0A00_0002, sourcePort: 1,
            destinationPort: 0))
        var received = 0
        var portSum = 0
        var sentPortSum = 0
        var random = UInt64(42)
        while received < 1_000_000 {
            random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let burst = Int(random >> 58) + 1  // 1...64: uneven batches exercise partial rings
            _ = kernel.receive(limit: burst) { frame, sequence in
                var builder = template
                builder.tuple.destinationPort = UInt16(truncatingIfNeeded: received + sequence)
                sentPortSum &+= Int(builder.tuple.destinationPort)
                return builder.write(into: frame, payload: UnsafeRawBufferPointer(start: nil, count: 0))!
            }
            let count = loop.runBatch { frame in
                if let packet = try? PacketParser.parse(frame) {
                    portSum &+= Int(packet.tuple.destinationPort)
                }
            }
            received += Int(count)
            #expect(loop.framesWithKernel + loop.allocator.available == frameCount)
            #expect(loop.framesWithKernel == kernel.framesInFillRing + kernel.framesInRxRing)
            if loop.framesWithKernel + loop.allocator.available != frameCount { break }
        }
        while loop.runBatch({ frame in
            if let packet = try? PacketParser.parse(frame) { portSum &+= Int(packet.tuple.destinationPort) }
        }) > 0 {}
        #expect(kernel.doubleHandOuts == 0)
        #expect(loop.counters.packets == UInt64(received) || loop.counters.packets >= 1_000_000)
        #expect(portSum == sentPortSum, "every frame reached the handler with its own bytes")
        #expect(loop.framesWithKernel + loop.allocator.available == frameCount)
    }

    @Test func allocatorHandsOutEachFrameOnce() {
        var allocator = FrameAllocator(frameCount: 8, frameSize: 4096)
        var seen: Set<UInt64> = []
        while let frame = allocator.allocate() { seen.insert(frame) }
        #expect(seen == Set((0..<8).map { UInt64($0 * 4096) }))
        #expect(allocator.available == 0)
        allocator.free(4096)
        #expect(allocator.allocate() == 4096)
    }
}

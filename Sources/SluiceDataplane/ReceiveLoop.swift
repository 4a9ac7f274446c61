// The receive half of a queue worker, for one AF_XDP socket:
//
//   allocator ──refill──► fill ring ──(kernel receives)──► rx ring ──peek ≤64──► body(frame)
//       ▲                                                                           │
//       └──────────────────────────────── free ◄────────────────────────────────────┘
//
// Every frame is in exactly one place: the allocator, or with the kernel (fill ring, being
// received into, or in the rx ring until released). `framesWithKernel + allocator.available`
// equals the UMEM's frame count after every batch; the tests check it after a million packets.
// The loop itself allocates nothing and takes no locks.

#if canImport(Glibc)
import Glibc
#endif
import CSluiceXDP

/// What one receive loop has seen. Owned by the loop's thread; a snapshot is read after the
/// loop stops (workers publish theirs through their own counters later).
public struct ReceiveCounters: Sendable, Equatable {
    /// Non-empty batches taken from the rx ring.
    public var batches: UInt64 = 0
    /// Frames received.
    public var packets: UInt64 = 0
    /// Bytes received (frame lengths).
    public var bytes: UInt64 = 0
    /// Times the kernel was woken because the fill ring asked for it (need_wakeup).
    public var wakeups: UInt64 = 0
    /// Times the fill ring could not be topped up because the allocator was empty.
    public var allocatorEmpty: UInt64 = 0

    /// Zeroed counters.
    public init() {}
}

/// The receive → handle → recycle loop of one socket. Owned by one thread (`~Copyable`: it owns
/// the frame allocator).
public struct ReceiveLoop: ~Copyable {
    /// Most descriptors taken from the rx ring per batch.
    public static let batchSize: UInt32 = 64

    private let rx: RxRing
    private let fill: FillRing
    private let area: UnsafeMutableRawPointer
    private let frameMask: UInt64
    private let wakeFD: Int32
    private let fillTarget: UInt32
    /// The free frames.
    public private(set) var allocator: FrameAllocator
    /// Frames handed to the kernel (fill ring, or received and not yet released).
    public private(set) var framesWithKernel: Int = 0
    /// What the loop has seen so far.
    public private(set) var counters = ReceiveCounters()

    /// A loop over `socket`'s rx ring and its UMEM's fill ring, owning every frame of the UMEM.
    public init(socket: AFXDPSocket, fillTarget: UInt32 = 2048) {
        self.init(
            rx: socket.rxRing, fill: socket.fillRing, area: socket.umem.area, frameCount: socket.umem.frameCount,
            frameSize: socket.umem.frameSize, wakeFD: socket.fd, fillTarget: fillTarget)
    }

    /// A loop over given rings (tests drive it with rings in ordinary memory and `wakeFD` -1).
    init(
        rx: RxRing, fill: FillRing, area: UnsafeMutableRawPointer, frameCount: Int, frameSize: Int, wakeFD: Int32,
        fillTarget: UInt32
    ) {
        self.rx = rx
        self.fill = fill
        self.area = area
        frameMask = ~UInt64(frameSize - 1)
        self.wakeFD = wakeFD
        self.fillTarget = fillTarget
        allocator = FrameAllocator(frameCount: frameCount, frameSize: frameSize)
        refill()
    }

    /// Tops the fill ring up to `fillTarget` frames with the kernel.
    @inline(__always)
    private mutating func refill() {
        let missing = Int(fillTarget) - framesWithKernel
        guard missing > 0 else { return }
        if allocator.available == 0 { counters.allocatorEmpty &+= 1 }
        framesWithKernel += Int(fill.refill(from: &allocator, limit: UInt32(missing)))
        if fill.needsWakeup && wakeFD >= 0 {
            counters.wakeups &+= 1
            System.kickReceive(wakeFD)
        }
    }

    /// Handles one batch: each received frame is passed to `body` (valid only during the
    /// call), then recycled. When nothing is waiting, waits up to `idleTimeoutMilliseconds` in
    /// poll(2) (0: return at once; a busy-polling worker passes 0). Returns the batch size.
    @inline(__always)
    public mutating func runBatch(
        idleTimeoutMilliseconds: Int32 = 0, _ body: (UnsafeRawBufferPointer) -> Void
    ) -> UInt32 {
        let (count, first) = rx.peek(limit: ReceiveLoop.batchSize)
        if count == 0 {
            if idleTimeoutMilliseconds > 0 && wakeFD >= 0 {
                var descriptor = pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)
                _ = poll(&descriptor, 1, idleTimeoutMilliseconds)
            }
            refill()
            return 0
        }
        for offset in 0..<count {
            let descriptor = rx.descriptor(first &+ offset)
            let frame = UnsafeRawBufferPointer(start: area + Int(descriptor.addr), count: Int(descriptor.len))
            body(frame)
            counters.bytes &+= UInt64(descriptor.len)
            allocator.free(descriptor.addr & frameMask)
        }
        rx.release(count)
        framesWithKernel -= Int(count)
        counters.packets &+= UInt64(count)
        counters.batches &+= 1
        refill()
        return count
    }
}

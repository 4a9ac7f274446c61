// The kernel's side of a queue's AF_XDP rings, in ordinary memory: lets the real worker loop
// (runQueueWorker) run without a kernel, driven with acquire/release atomics the way the kernel
// drives real rings. Shared by the worker-loop test (Tests/SluiceDataplaneTests/QueueWorkerTests)
// and forward-bench's loop benchmark (bench/forward/LoopBench.swift). Never used by `sluice`.
import Atomics
import CSluiceXDP
import SluiceDataplane

/// The four rings of one side in ordinary memory, with the kernel's half of each. One thread plays the
/// kernel (`receive`, `transmit`) while the worker owns `rings`; the `held…` counts may be read from any.
public final class MemoryKernelSide: @unchecked Sendable {
    /// Entries per ring (a power of two).
    public let size: UInt32
    private let fill = UnsafeMutablePointer<xsk_ring_prod>.allocate(capacity: 1)
    private let rx = UnsafeMutablePointer<xsk_ring_cons>.allocate(capacity: 1)
    private let tx = UnsafeMutablePointer<xsk_ring_prod>.allocate(capacity: 1)
    private let completion = UnsafeMutablePointer<xsk_ring_cons>.allocate(capacity: 1)
    /// producer, consumer, flags for each ring: fill 0-2, rx 3-5, tx 6-8, completion 9-11.
    private let indexes = UnsafeMutablePointer<UInt32>.allocate(capacity: 12)
    private let fillEntries: UnsafeMutablePointer<UInt64>
    private let completionEntries: UnsafeMutablePointer<UInt64>
    private let rxEntries: UnsafeMutablePointer<xdp_desc>
    private let txEntries: UnsafeMutablePointer<xdp_desc>

    /// Four empty rings of `size` entries (a power of two).
    public init(size: UInt32) {
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

    private func index(_ slot: Int) -> UnsafeAtomic<UInt32> {
        UnsafeAtomic(
            at: UnsafeMutableRawPointer(indexes + slot).assumingMemoryBound(to: UnsafeAtomic<UInt32>.Storage.self))
    }

    /// The worker's half of the four rings (no socket: `fd` is -1).
    public var rings: SideRings {
        SideRings(rx: RxRing(ring: rx), tx: TxRing(ring: tx), fill: FillRing(ring: fill),
                  completion: CompletionRing(ring: completion), fd: -1)
    }

    /// Moves up to `limit` frames from the fill ring into the rx ring, `write` filling each.
    public func receive(limit: Int, area: UnsafeMutableRawPointer, write: (UnsafeMutableRawPointer) -> Int) -> Int {
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
    public func transmit(area: UnsafeMutableRawPointer, sent: (UnsafeRawBufferPointer) -> Void) -> Int {
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

    /// Whether the worker has taken every frame put on the rx ring.
    public var rxDrained: Bool { index(3).load(ordering: .acquiring) == index(4).load(ordering: .acquiring) }

    /// Frames the kernel side holds for receiving: in fill and rx.
    public var heldForReceive: Int {
        Int(index(0).load(ordering: .acquiring) &- index(1).load(ordering: .acquiring))
            + Int(index(3).load(ordering: .acquiring) &- index(4).load(ordering: .acquiring))
    }

    /// Frames the kernel side holds for transmitting: in tx and completion.
    public var heldForTransmit: Int {
        Int(index(6).load(ordering: .acquiring) &- index(7).load(ordering: .acquiring))
            + Int(index(9).load(ordering: .acquiring) &- index(10).load(ordering: .acquiring))
    }
}

// Per-worker counters without locks or shared cache lines: each worker owns one block of
// atomics that only it writes (relaxed load + store, no read-modify-write needed with one
// writer); it accumulates a batch in plain memory and flushes once per batch. Any thread may
// read a block at any time (relaxed loads), and `snapshot` sums the blocks.

import Atomics

/// What the dataplane counts. The raw value is the index in a worker's block.
public enum DataplaneCounter: Int, CaseIterable, Sendable {
    case receivedPackets, receivedBytes
    case allowedPackets, allowedBytes
    case deniedPackets, deniedBytes
    case transmittedPackets
    case droppedMalformed, droppedFragment, droppedNoPolicy, droppedNoFlow, droppedFlowTableFull, droppedNoRoute
    case droppedNoNeighbour, droppedHopLimit, droppedTxRingFull, droppedFlowCut
    case flowsOpened, flowsClosed, flowsRefused, flowsCut
    case icmpErrorsSent
    /// Flow offload: installs requested by workers, and requests lost to a full ring.
    case offloadRequests, offloadRequestsDropped
    case eventsQueued, eventsDropped
    /// The tx ring had no room (the worker kicked the kernel and waited, or dropped the frame when
    /// that did not help) or no free frame was left for receive.
    case txRingStalls, fillRingStalls
    case batches, rxWakeups, txWakeups
    /// TLS metadata matching (docs/design/tls-pending.md): flows that entered the pending state,
    /// handshakes decided allow / deny by the policy, packets held (client data before the
    /// decision), and the fail-closed denies by reason: buffer overflow, not a TLS handshake,
    /// pending too long, no free pending slot, handshake start not seen.
    case tlsPending, tlsAllowed, tlsDenied, tlsHeldPackets
    case tlsFailedOverflow, tlsFailedGarbage, tlsFailedTimeout, tlsFailedPoolFull, tlsFailedUnseen
    /// TCP resets the gateway sent (docs/design/dataplane-workers-and-flows.md, "TCP resets"), and
    /// resets towards the receiver left unsent because its next hop had no neighbour entry.
    case tcpResetsSent, tcpResetsNoNeighbour
    /// CPU cycles the workers spent on batches that received something, from the receive to the
    /// end of the batch's transmit and refill (idle polling excluded): divided by
    /// `receivedPackets`, the worker's own cycles per packet, as the C baseline counts them.
    case workerBusyCycles

    /// Number of counters (the last case's index + 1; computing `allCases.count` allocates).
    public static let count = DataplaneCounter.workerBusyCycles.rawValue + 1

    /// The name used in `/api/v1/stats` and logs (snake case).
    public var name: String {
        var result = ""
        for character in "\(self)" {
            if character.isUppercase {
                result += "_" + character.lowercased()
            } else {
                result.append(character)
            }
        }
        return result
    }
}

/// The counter blocks of all workers. Written by worker w only in block w; read by anyone.
public final class DataplaneCounterBlocks: @unchecked Sendable {
    /// Number of worker blocks.
    public let workerCount: Int
    static let stride = (DataplaneCounter.count * 8 + 63) / 64 * 64
    let base: UnsafeMutableRawPointer

    /// Zeroed blocks for `workerCount` workers.
    public init(workerCount: Int) {
        self.workerCount = workerCount
        base = .allocate(byteCount: max(workerCount, 1) * DataplaneCounterBlocks.stride, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: max(workerCount, 1) * DataplaneCounterBlocks.stride)
    }

    deinit { base.deallocate() }

    /// The writer for worker `worker`'s block.
    public func writer(worker: Int) -> CounterWriter {
        precondition(worker >= 0 && worker < workerCount, "worker index out of range")
        return CounterWriter(block: (base + worker * DataplaneCounterBlocks.stride)
            .assumingMemoryBound(to: UnsafeAtomic<UInt64>.Storage.self))
    }

    /// One worker's counters now.
    public func read(worker: Int) -> [DataplaneCounter: UInt64] {
        let block = writer(worker: worker)
        var result: [DataplaneCounter: UInt64] = [:]
        for counter in DataplaneCounter.allCases {
            result[counter] = block.atomic(counter.rawValue).load(ordering: .relaxed)
        }
        return result
    }

    /// All workers' counters summed.
    public func snapshot() -> [DataplaneCounter: UInt64] {
        var total: [DataplaneCounter: UInt64] = [:]
        for worker in 0..<workerCount {
            for (counter, value) in read(worker: worker) { total[counter, default: 0] &+= value }
        }
        return total
    }
}

/// One worker's block: `add` into batch-local memory, `flush` publishes it. Used by one thread.
public struct CounterWriter: @unchecked Sendable {
    let block: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>

    @inline(__always)
    func atomic(_ index: Int) -> UnsafeAtomic<UInt64> { UnsafeAtomic(at: block + index) }

    /// Adds `pending` (one slot per counter, zeroed afterwards) to the shared block.
    @inline(__always)
    public func flush(_ pending: UnsafeMutablePointer<UInt64>) {
        for index in 0..<DataplaneCounter.count where pending[index] != 0 {
            let counter = atomic(index)
            counter.store(counter.load(ordering: .relaxed) &+ pending[index], ordering: .relaxed)
            pending[index] = 0
        }
    }
}

/// Batch-local counters of one worker (plain memory, flushed with `CounterWriter.flush`).
public struct PendingCounters: @unchecked Sendable {
    /// One slot per `DataplaneCounter`.
    public let slots: UnsafeMutablePointer<UInt64>

    /// Zeroed slots. Call `deallocate` when the worker ends.
    public init() {
        slots = .allocate(capacity: DataplaneCounter.count)
        slots.initialize(repeating: 0, count: DataplaneCounter.count)
    }

    public func deallocate() { slots.deallocate() }

    @inline(__always)
    public func add(_ counter: DataplaneCounter, _ amount: UInt64 = 1) {
        slots[counter.rawValue] &+= amount
    }
}

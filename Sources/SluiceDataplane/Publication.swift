// One immutable value (the compiled policy, the forwarding snapshot) published to the workers
// through one atomic pointer, with epoch-based reclamation:
//
//   control plane: publish(new) ── exchange pointer ──► retire(old, generation)
//   worker w, once per batch: p = load(acquire); epoch[w] = p.generation (release); use p
//   control plane: free every retired value whose generation < min over w of epoch[w]
//
// A worker stores the generation it holds, and it never holds anything older than what it
// stored, so a retired value older than every worker's epoch is unreachable. A worker that
// (re)starts first stores 0 with sequential consistency and only then loads the pointer: either
// the publisher's scan sees the 0 and keeps everything, or the worker's load sees the new value.
// Workers never wait for the control plane; the control plane waits (asynchronously) for them.

import Atomics
import Foundation

/// A value the workers read through one atomic pointer. `Value` is a class whose instances are
/// immutable once published. Publish/reclaim from control-plane threads (serialized by a lock);
/// `Reader` from one worker thread each.
public final class Publication<Value: AnyObject>: @unchecked Sendable {
    private let current: UnsafeAtomic<UnsafeMutableRawPointer>
    /// One cache line per worker: the generation it holds, `idle` when it holds nothing.
    private let epochs: UnsafeMutableRawPointer
    /// Number of worker slots.
    public let workerCount: Int
    private let lock = NSLock()
    private var retired: [(generation: UInt64, value: Unmanaged<Box>)] = []
    private var latestGeneration: UInt64

    /// An epoch meaning "this worker holds no value" (stopped, or never started).
    public static var idle: UInt64 { UInt64.max }

    /// What the pointer points to: the value and its generation, retained while published
    /// or retired.
    public final class Box {
        /// Monotonic; larger is newer.
        public let generation: UInt64
        /// The value (nil allowed: "nothing published", e.g. no policy, fail closed).
        public let value: Value?
        /// The value as an unmanaged reference, so workers reach it without retain/release.
        public let unmanagedValue: Unmanaged<Value>?

        init(generation: UInt64, value: Value?) {
            self.generation = generation
            self.value = value
            unmanagedValue = value.map { Unmanaged.passUnretained($0) }
        }
    }

    /// A publication of `initial` at generation `generation`, read by `workerCount` workers.
    public init(initial: Value?, generation: UInt64 = 0, workerCount: Int) {
        self.workerCount = workerCount
        latestGeneration = generation
        current = .create(Unmanaged.passRetained(Box(generation: generation, value: initial)).toOpaque())
        epochs = .allocate(byteCount: max(workerCount, 1) * 64, alignment: 64)
        for worker in 0..<workerCount {
            (epochs + worker * 64).bindMemory(to: UnsafeAtomic<UInt64>.Storage.self, capacity: 1)
                .initialize(to: UnsafeAtomic<UInt64>.Storage(Publication.idle))
        }
    }

    deinit {
        Unmanaged<Box>.fromOpaque(current.load(ordering: .acquiring)).release()
        current.destroy()
        for entry in retired { entry.value.release() }
        epochs.deallocate()
    }

    @inline(__always)
    func epoch(_ worker: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: (epochs + worker * 64).assumingMemoryBound(to: UnsafeAtomic<UInt64>.Storage.self))
    }

    /// The newest generation published.
    public var generation: UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return latestGeneration
    }

    /// The value published now (control plane; retains it).
    public var value: Value? {
        lock.lock()
        defer { lock.unlock() }
        return Unmanaged<Box>.fromOpaque(current.load(ordering: .acquiring)).takeUnretainedValue().value
    }

    /// Publishes `value` under `generation` (must be newer than the last), retires the old one,
    /// and frees what no worker can hold any more. Returns at once; `waitUntilConfirmed` waits.
    public func publish(_ value: Value?, generation: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        precondition(generation > latestGeneration, "generations must increase")
        latestGeneration = generation
        let box = Unmanaged.passRetained(Box(generation: generation, value: value))
        let old = current.exchange(box.toOpaque(), ordering: .sequentiallyConsistent)
        let oldBox = Unmanaged<Box>.fromOpaque(old)
        retired.append((oldBox._withUnsafeGuaranteedRef { $0.generation }, oldBox))
        reclaimLocked()
    }

    /// The smallest generation any worker holds (`idle` when none holds one).
    public var oldestHeld: UInt64 {
        var oldest = Publication.idle
        for worker in 0..<workerCount {
            oldest = min(oldest, epoch(worker).load(ordering: .sequentiallyConsistent))
        }
        return oldest
    }

    /// Whether every running worker holds `generation` or newer.
    public func confirmed(_ generation: UInt64) -> Bool {
        let oldest = oldestHeld
        return oldest == Publication.idle || oldest >= generation
    }

    /// Frees retired values no worker can hold. Returns how many are still retired.
    @discardableResult
    public func reclaim() -> Int {
        lock.lock()
        defer { lock.unlock() }
        reclaimLocked()
        return retired.count
    }

    private func reclaimLocked() {
        let oldest = oldestHeld
        retired.removeAll { entry in
            guard entry.generation < oldest else { return false }
            entry.value.release()
            return true
        }
    }

    /// Waits until every running worker holds `generation` or newer, reclaiming on the way.
    /// Returns false on timeout.
    public func waitUntilConfirmed(_ generation: UInt64, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !confirmed(generation) {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(1))
        }
        reclaim()
        return true
    }

    /// The reading side for worker `worker`.
    public func reader(worker: Int) -> Reader {
        precondition(worker >= 0 && worker < workerCount, "worker index out of range")
        return Reader(current: current, epoch: epoch(worker))
    }

    /// One worker's view: plain pointers, no reference counting. Use from that worker only.
    public struct Reader: @unchecked Sendable {
        let current: UnsafeAtomic<UnsafeMutableRawPointer>
        let epoch: UnsafeAtomic<UInt64>

        /// Announces that this worker is about to read (call once, before the first `acquire`).
        public func start() { epoch.store(0, ordering: .sequentiallyConsistent) }

        /// Announces that this worker holds nothing any more (it stopped).
        public func stop() { epoch.store(Publication.idle, ordering: .releasing) }

        /// Loads the current value and records its generation as this worker's epoch. The
        /// returned reference stays valid until the next `acquire` or `stop` of this reader.
        @inline(__always)
        public func acquire() -> (generation: UInt64, value: Unmanaged<Value>?) {
            let box = Unmanaged<Box>.fromOpaque(current.load(ordering: .acquiring))
            let (generation, value) = box._withUnsafeGuaranteedRef { ($0.generation, $0.unmanagedValue) }
            if epoch.load(ordering: .relaxed) != generation {
                epoch.store(generation, ordering: .releasing)
            }
            return (generation, value)
        }
    }
}

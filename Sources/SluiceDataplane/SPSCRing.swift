// A bounded single-producer single-consumer ring in raw memory: a worker pushes (never blocks;
// a full ring refuses and the worker counts the drop), the control plane pops. Head and tail
// live on their own cache lines; the producer publishes an element with a release store of the
// tail and the consumer reads it after an acquire load, so it is correct on weakly ordered CPUs.

import Atomics

/// A ring of plain values (no references inside: elements are moved bitwise). Push from one
/// thread (the producer), pop from one other thread (the consumer).
public final class SPSCRing<Element>: @unchecked Sendable {
    /// Slots (a power of two).
    public let capacity: Int
    let storage: UnsafeMutablePointer<Element>
    /// Cache line 0: head (consumer index); cache line 1: tail (producer index).
    let indexes: UnsafeMutableRawPointer

    /// A ring of at least `capacity` slots (rounded up to a power of two).
    public init(capacity: Int) {
        var size = 2
        while size < capacity { size <<= 1 }
        self.capacity = size
        storage = .allocate(capacity: size)
        indexes = .allocate(byteCount: 128, alignment: 64)
        indexes.bindMemory(to: UnsafeAtomic<Int>.Storage.self, capacity: 1).initialize(to: .init(0))
        (indexes + 64).bindMemory(to: UnsafeAtomic<Int>.Storage.self, capacity: 1).initialize(to: .init(0))
    }

    deinit {
        var consumer = self.consumer
        while consumer.pop() != nil {}
        storage.deallocate()
        indexes.deallocate()
    }

    /// The producer's view (copyable, no reference counting).
    public var producer: Producer {
        Producer(storage: storage, mask: capacity - 1, head: head, tail: tail)
    }

    /// The consumer's view.
    public var consumer: Consumer { Consumer(storage: storage, mask: capacity - 1, head: head, tail: tail) }

    var head: UnsafeAtomic<Int> { UnsafeAtomic(at: indexes.assumingMemoryBound(to: UnsafeAtomic<Int>.Storage.self)) }
    var tail: UnsafeAtomic<Int> {
        UnsafeAtomic(at: (indexes + 64).assumingMemoryBound(to: UnsafeAtomic<Int>.Storage.self))
    }

    /// Elements waiting (approximate while the producer runs).
    public var count: Int { tail.load(ordering: .acquiring) - head.load(ordering: .acquiring) }

    /// The pushing side.
    public struct Producer: @unchecked Sendable {
        let storage: UnsafeMutablePointer<Element>
        let mask: Int
        let head: UnsafeAtomic<Int>
        let tail: UnsafeAtomic<Int>

        /// Appends `element`; false (and nothing written) when the ring is full.
        @inline(__always)
        public func push(_ element: Element) -> Bool {
            let position = tail.load(ordering: .relaxed)
            if position - head.load(ordering: .acquiring) > mask { return false }
            (storage + (position & mask)).initialize(to: element)
            tail.store(position + 1, ordering: .releasing)
            return true
        }
    }

    /// The popping side.
    public struct Consumer: @unchecked Sendable {
        let storage: UnsafeMutablePointer<Element>
        let mask: Int
        let head: UnsafeAtomic<Int>
        let tail: UnsafeAtomic<Int>

        /// Removes and returns the oldest element, or nil when empty.
        @inline(__always)
        public mutating func pop() -> Element? {
            let position = head.load(ordering: .relaxed)
            if position == tail.load(ordering: .acquiring) { return nil }
            let element = (storage + (position & mask)).move()
            head.store(position + 1, ordering: .releasing)
            return element
        }
    }
}

// Free UMEM frames of one worker, as a fixed-capacity LIFO stack of frame offsets. LIFO hands
// back the most recently used (cache-warm) frames first. It never allocates after init, and
// it conserves frames: a frame is either here or owned by exactly one ring, which the
// counters in ReceiveLoop make checkable (`available + inKernel == frameCount`).

/// Free frames of one UMEM. Owned by one worker thread; `~Copyable` so that it cannot be
/// duplicated (two copies would hand out the same frame twice).
public struct FrameAllocator: ~Copyable {
    private let slots: UnsafeMutablePointer<UInt64>
    /// How many frames this allocator manages in total.
    public let capacity: Int
    /// How many frames are free now.
    public private(set) var available: Int

    /// An allocator that owns every frame of a UMEM of `frameCount` frames of `frameSize` bytes.
    public init(frameCount: Int, frameSize: Int) {
        capacity = frameCount
        slots = .allocate(capacity: frameCount)
        for index in 0..<frameCount {
            slots[index] = UInt64((frameCount - 1 - index) * frameSize)
        }
        available = frameCount
    }

    /// Takes a free frame's UMEM offset, or nil when none is free.
    @inline(__always)
    public mutating func allocate() -> UInt64? {
        guard available > 0 else { return nil }
        available -= 1
        return slots[available]
    }

    /// Returns a frame. Returning more frames than exist is a programmer error (a double free).
    @inline(__always)
    public mutating func free(_ frame: UInt64) {
        precondition(available < capacity, "FrameAllocator: more frames freed than allocated")
        slots[available] = frame
        available += 1
    }

    deinit { slots.deallocate() }
}

// Views of the four AF_XDP rings for the worker that owns them. The index arithmetic and the
// memory ordering come from libxdp's inline helpers (xsk.h), which Swift calls directly:
// consumers load the producer index with acquire and publish their consumer index with
// release, producers the other way round (libbpf_smp_load_acquire / libbpf_smp_store_release),
// so this code is correct on weakly ordered CPUs too, not only under x86 TSO.
//
// Each view is a pointer to the ring struct: copying the view does not copy ring state, and
// using it costs no exclusivity checks. Only the owning worker thread may use a view.

import CSluiceXDP

/// A producer ring of frame addresses: the fill ring.
public struct FillRing {
    let ring: UnsafeMutablePointer<xsk_ring_prod>

    /// A view of the ring struct at `ring` (a socket's, or one in ordinary memory for tests
    /// and benchmarks that play the kernel's side).
    public init(ring: UnsafeMutablePointer<xsk_ring_prod>) { self.ring = ring }

    /// Whether the kernel asked to be woken (XDP_USE_NEED_WAKEUP) to see new fill entries.
    @inline(__always)
    public var needsWakeup: Bool { xsk_ring_prod__needs_wakeup(ring) != 0 }

    /// Moves up to `limit` free frames from `allocator` into the ring; returns how many.
    @inline(__always)
    public func refill(from allocator: inout FrameAllocator, limit: UInt32) -> UInt32 {
        let wanted = min(limit, UInt32(allocator.available))
        guard wanted > 0 else { return 0 }
        var index: UInt32 = 0
        let reserved = xsk_ring_prod__reserve(ring, wanted, &index)
        for offset in 0..<reserved {
            // Cannot fail: `wanted` ≤ available.
            xsk_ring_prod__fill_addr(ring, index &+ offset).pointee = allocator.allocate()!
        }
        xsk_ring_prod__submit(ring, reserved)
        return reserved
    }
}

/// A consumer ring of frame addresses: the completion ring.
public struct CompletionRing {
    let ring: UnsafeMutablePointer<xsk_ring_cons>

    /// A view of the ring struct at `ring` (a socket's, or one in ordinary memory for tests
    /// and benchmarks that play the kernel's side).
    public init(ring: UnsafeMutablePointer<xsk_ring_cons>) { self.ring = ring }

    /// Returns up to `limit` transmitted frames to `allocator`; returns how many.
    @inline(__always)
    public func reclaim(into allocator: inout FrameAllocator, limit: UInt32, frameMask: UInt64) -> UInt32 {
        var index: UInt32 = 0
        let count = xsk_ring_cons__peek(ring, limit, &index)
        for offset in 0..<count {
            allocator.free(xsk_ring_cons__comp_addr(ring, index &+ offset).pointee & frameMask)
        }
        if count > 0 { xsk_ring_cons__release(ring, count) }
        return count
    }
}

/// A consumer ring of packet descriptors: the rx ring.
public struct RxRing {
    let ring: UnsafeMutablePointer<xsk_ring_cons>

    /// A view of the ring struct at `ring` (a socket's, or one in ordinary memory for tests
    /// and benchmarks that play the kernel's side).
    public init(ring: UnsafeMutablePointer<xsk_ring_cons>) { self.ring = ring }

    /// Claims up to `limit` received descriptors; returns how many and the first index.
    @inline(__always)
    public func peek(limit: UInt32) -> (count: UInt32, index: UInt32) {
        var index: UInt32 = 0
        let count = xsk_ring_cons__peek(ring, limit, &index)
        return (count, index)
    }

    /// The descriptor at ring index `index` (from `peek`).
    @inline(__always)
    public func descriptor(_ index: UInt32) -> xdp_desc { xsk_ring_cons__rx_desc(ring, index).pointee }

    /// Hands `count` peeked descriptors back to the kernel.
    @inline(__always)
    public func release(_ count: UInt32) { xsk_ring_cons__release(ring, count) }
}

/// A producer ring of packet descriptors: the tx ring.
public struct TxRing {
    let ring: UnsafeMutablePointer<xsk_ring_prod>

    /// A view of the ring struct at `ring` (a socket's, or one in ordinary memory for tests
    /// and benchmarks that play the kernel's side).
    public init(ring: UnsafeMutablePointer<xsk_ring_prod>) { self.ring = ring }

    /// Whether the kernel must be kicked (sendto) to transmit.
    @inline(__always)
    public var needsWakeup: Bool { xsk_ring_prod__needs_wakeup(ring) != 0 }

    /// Reserves up to `limit` descriptors; returns how many and the first index.
    @inline(__always)
    public func reserve(limit: UInt32) -> (count: UInt32, index: UInt32) {
        var index: UInt32 = 0
        let count = xsk_ring_prod__reserve(ring, limit, &index)
        return (count, index)
    }

    /// Writes the descriptor at ring index `index` (from `reserve`).
    @inline(__always)
    public func setDescriptor(_ index: UInt32, address: UInt64, length: UInt32) {
        let descriptor = xsk_ring_prod__tx_desc(ring, index)!
        descriptor.pointee.addr = address
        descriptor.pointee.len = length
        descriptor.pointee.options = 0
    }

    /// Publishes `count` reserved descriptors to the kernel.
    @inline(__always)
    public func submit(_ count: UInt32) { xsk_ring_prod__submit(ring, count) }
}

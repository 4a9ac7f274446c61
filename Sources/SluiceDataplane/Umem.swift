// The UMEM: one mmap'd area of equal-size frames shared with the kernel, registered with
// libxdp, plus its fill ring (frames we give the kernel to receive into) and completion ring
// (frames the kernel has finished transmitting). The ring structs live in manually allocated
// memory so their addresses stay fixed: libxdp keeps pointers to them until the first socket
// is bound, and workers use them through pointers with no exclusivity checks.

#if canImport(Glibc)
import Glibc
#endif
import CSluiceXDP

/// A UMEM area and its fill/completion rings. Created by the control plane; afterwards the
/// rings are used only by the one worker thread that owns the UMEM.
public final class Umem {
    /// Number of frames in the area.
    public let frameCount: Int
    /// Bytes per frame (a power of two, at least 2048).
    public let frameSize: Int
    /// Start of the frame area.
    public let area: UnsafeMutableRawPointer
    /// The fill ring (producer: the owning worker).
    public let fillRing: UnsafeMutablePointer<xsk_ring_prod>
    /// The completion ring (consumer: the owning worker).
    public let completionRing: UnsafeMutablePointer<xsk_ring_cons>
    let handle: OpaquePointer
    private let areaSize: Int

    /// Maps `frameCount` frames of `frameSize` bytes and registers them with the kernel.
    public init(frameCount: Int = 4096, frameSize: Int = 4096, ringSize: UInt32 = 2048) throws {
        System.raiseMemlockLimit()
        precondition(frameSize >= 2048 && frameSize & (frameSize - 1) == 0, "frame size must be a power of two ≥ 2048")
        precondition(ringSize & (ringSize - 1) == 0, "ring size must be a power of two")
        self.frameCount = frameCount
        self.frameSize = frameSize
        // Huge pages: the worker reads each received frame's headers at a random frame (see
        // HugePageMapping). Registered with the kernel below like any anonymous memory.
        let mapping = try HugePageMapping.map(bytes: frameCount * frameSize, what: "UMEM")
        areaSize = mapping.size
        let mapped = mapping.base
        area = mapped
        fillRing = .allocate(capacity: 1)
        fillRing.initialize(to: xsk_ring_prod())
        completionRing = .allocate(capacity: 1)
        completionRing.initialize(to: xsk_ring_cons())
        var config = xsk_umem_config(
            fill_size: ringSize, comp_size: ringSize, frame_size: UInt32(frameSize),
            frame_headroom: UInt32(XSK_UMEM__DEFAULT_FRAME_HEADROOM), flags: 0)
        var created: OpaquePointer? = nil
        let status = xsk_umem__create(&created, mapped, UInt64(frameCount * frameSize), fillRing, completionRing, &config)
        guard status == 0, let created else {
            munmap(mapped, areaSize)
            fillRing.deallocate()
            completionRing.deallocate()
            // ENOBUFS/EPERM here usually means RLIMIT_MEMLOCK without CAP_IPC_LOCK.
            throw SystemError(
                "xsk_umem__create(\(frameCount) × \(frameSize) bytes; needs CAP_IPC_LOCK or a memlock limit above it)",
                code: status == 0 ? EINVAL : status)
        }
        handle = created
    }

    deinit {
        _ = xsk_umem__delete(handle)
        munmap(area, areaSize)
        fillRing.deallocate()
        completionRing.deallocate()
    }

    /// The UMEM offset of the frame that contains `address` (descriptors may point past the
    /// frame start by the headroom).
    @inline(__always)
    public func frameStart(_ address: UInt64) -> UInt64 { address & ~UInt64(frameSize - 1) }
}

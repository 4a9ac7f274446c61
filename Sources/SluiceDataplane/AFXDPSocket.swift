// One AF_XDP socket bound to (interface, queue) on a UMEM. Created with libxdp's
// XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD: Sluice loads and attaches its own XDP program
// (XDPProgram) instead of libxdp's default one, whose dispatcher needs a bpffs that
// `ip netns exec` hides; the socket is then put into our XSKMAP with xsk_socket__update_xskmap.
//
// Several sockets may share one UMEM (xsk_socket__create_shared): a gateway worker binds queue q
// of the inside and of the outside interface to the same UMEM, so a frame received on one is
// transmitted on the other without a copy. Each (interface, queue) then has its own fill and
// completion rings; the UMEM's own pair serves the first socket.

#if canImport(Glibc)
import Glibc
#endif
import CSluiceXDP

/// Kernel statistics of one AF_XDP socket (`XDP_STATISTICS`).
public struct SocketStatistics: Sendable, Equatable {
    /// Dropped for reasons other than invalid descriptors (e.g. no fill entry).
    public var rxDropped: UInt64
    /// Rx descriptors that pointed outside the UMEM.
    public var rxInvalidDescriptors: UInt64
    /// Tx descriptors that pointed outside the UMEM.
    public var txInvalidDescriptors: UInt64
    /// Frames dropped because the rx ring was full.
    public var rxRingFull: UInt64
    /// Times the fill ring was empty when a frame arrived (the receiver was too slow to refill).
    public var fillRingEmpty: UInt64
    /// Times the tx ring was empty when the kernel looked.
    public var txRingEmpty: UInt64
}

/// An AF_XDP socket and its rx/tx rings. Created by the control plane; afterwards the rings
/// are used only by the owning worker thread.
public final class AFXDPSocket {
    /// The interface it is bound to.
    public let interface: String
    /// The rx/tx queue it is bound to.
    public let queue: UInt32
    /// The UMEM its frames live in (kept alive by the socket).
    public let umem: Umem
    /// The socket's file descriptor (for poll and wakeups).
    public let fd: Int32
    private let handle: OpaquePointer
    private let rx: UnsafeMutablePointer<xsk_ring_cons>
    private let tx: UnsafeMutablePointer<xsk_ring_prod>
    private let fill: UnsafeMutablePointer<xsk_ring_prod>
    private let completion: UnsafeMutablePointer<xsk_ring_cons>
    private let ownsUmemRings: Bool

    /// Binds a socket to `interface`/`queue` on `umem` (the UMEM's first socket: it shares the
    /// UMEM's fill and completion rings) and registers it in `program`'s XSKMAP at `queue`.
    public convenience init(
        interface: String, queue: UInt32, umem: Umem, program: XDPProgram, ringSize: UInt32 = 2048
    ) throws {
        try self.init(interface: interface, queue: queue, umem: umem, program: program, ringSize: ringSize,
                      sharing: false)
    }

    /// Binds a socket to `interface`/`queue` on `umem`, which other sockets may share. With
    /// `sharing` false this is the UMEM's first socket and uses its fill/completion rings; with
    /// `sharing` true it gets a fill/completion pair of its own (another interface or queue).
    /// The kernel reuses the first socket's need_wakeup and copy/zero-copy mode for later ones.
    public init(
        interface: String, queue: UInt32, umem: Umem, program: XDPProgram, ringSize: UInt32 = 2048, sharing: Bool
    ) throws {
        self.interface = interface
        self.queue = queue
        self.umem = umem
        ownsUmemRings = sharing
        if sharing {
            fill = .allocate(capacity: 1)
            fill.initialize(to: xsk_ring_prod())
            completion = .allocate(capacity: 1)
            completion.initialize(to: xsk_ring_cons())
        } else {
            fill = umem.fillRing
            completion = umem.completionRing
        }
        rx = .allocate(capacity: 1)
        rx.initialize(to: xsk_ring_cons())
        tx = .allocate(capacity: 1)
        tx.initialize(to: xsk_ring_prod())
        var config = xsk_socket_config()
        config.rx_size = ringSize
        config.tx_size = ringSize
        config.libxdp_flags = UInt32(XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD)
        // Let the kernel pick zero-copy where the driver offers it (veth does not: copy mode).
        config.bind_flags = UInt16(XDP_USE_NEED_WAKEUP)
        var created: OpaquePointer? = nil
        let status = xsk_socket__create_shared(
            &created, interface, queue, umem.handle, rx, tx, fill, completion, &config)
        guard status == 0, let created else {
            rx.deallocate()
            tx.deallocate()
            if sharing {
                fill.deallocate()
                completion.deallocate()
            }
            throw SystemError("xsk_socket__create(\(interface), queue \(queue))", code: status == 0 ? EINVAL : status)
        }
        handle = created
        fd = xsk_socket__fd(created)
        let registered = xsk_socket__update_xskmap(created, program.socketMapFD)
        if registered != 0 {
            xsk_socket__delete(created)
            rx.deallocate()
            tx.deallocate()
            if sharing {
                fill.deallocate()
                completion.deallocate()
            }
            throw SystemError("xsk_socket__update_xskmap(\(interface), queue \(queue))", code: registered)
        }
    }

    deinit {
        xsk_socket__delete(handle)
        rx.deallocate()
        tx.deallocate()
        if ownsUmemRings {
            fill.deallocate()
            completion.deallocate()
        }
    }

    /// The rx ring view, for the owning worker.
    public var rxRing: RxRing { RxRing(ring: rx) }
    /// The tx ring view, for the owning worker.
    public var txRing: TxRing { TxRing(ring: tx) }
    /// This socket's fill ring view (the UMEM's for its first socket), for the owning worker.
    public var fillRing: FillRing { FillRing(ring: fill) }
    /// This socket's completion ring view, for the owning worker.
    public var completionRing: CompletionRing { CompletionRing(ring: completion) }

    /// Reads the kernel's statistics for this socket.
    public func statistics() throws -> SocketStatistics {
        var raw = xdp_statistics()
        var length = socklen_t(MemoryLayout<xdp_statistics>.size)
        _ = try System.check("getsockopt(XDP_STATISTICS, \(interface) queue \(queue))") {
            getsockopt(fd, Int32(SOL_XDP), Int32(XDP_STATISTICS), &raw, &length)
        }
        return SocketStatistics(
            rxDropped: raw.rx_dropped, rxInvalidDescriptors: raw.rx_invalid_descs,
            txInvalidDescriptors: raw.tx_invalid_descs, rxRingFull: raw.rx_ring_full,
            fillRingEmpty: raw.rx_fill_ring_empty_descs, txRingEmpty: raw.tx_ring_empty_descs)
    }
}

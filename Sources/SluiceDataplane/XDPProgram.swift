// Loads bpf/sluice_xdp.c's object with libbpf, attaches it to interfaces through BPF links
// (native mode, logged fallback to generic; a stale copy of our own program left attached the
// old netlink way is replaced), fills the gateway-address map, registers AF_XDP sockets in
// the XSKMAP and reads the per-CPU counters. Control plane only: nothing here runs per packet.
//
// Where the object comes from, first match wins:
//   1. $SLUICE_BPF_OBJECT
//   2. sluice_xdp.bpf.o next to the running executable (how deploy/ installs it)
//   3. bpf/build/sluice_xdp.bpf.o in the source tree this file was compiled from (bpf/build.sh)

#if canImport(Glibc)
import Glibc
#endif
import CSluiceXDP
import SluicePolicy

/// How an XDP program is attached to an interface.
public enum XDPAttachMode: String, Sendable {
    /// In the driver, before an skb exists (veth and most NICs support it).
    case native
    /// After the skb is built; slower, works on every interface.
    case generic

    var flags: UInt32 {
        switch self {
        case .native: return UInt32(XDP_FLAGS_DRV_MODE)
        case .generic: return UInt32(XDP_FLAGS_SKB_MODE)
        }
    }
}

/// The counters the XDP program keeps (one per `enum sluice_counter_index` in sluice_maps.h).
public enum XDPCounter: Int, CaseIterable, Sendable {
    case redirectedV4, redirectedV6, passedARP, passedNeighborDiscovery, passedLocal, passedLinkScope, passedNonIP
    case droppedMalformed, droppedNoSocket
    /// Flow offload: forwarded or dropped by the program itself; stale entries and punted
    /// packets (SYN/FIN/RST, TTL ≤ 1, no egress) that went to the workers instead.
    case offloadForwarded, offloadDropped, offloadStale, offloadPunted

    /// The index in the BPF counter map. Checked against the C enum by `XDPProgram.load`.
    var mapIndex: UInt32 { UInt32(rawValue) }
}

/// A snapshot of the XDP program's counters, summed over CPUs.
public struct XDPCounters: Sendable, Equatable {
    /// Packets per counter.
    public var packets: [XDPCounter: UInt64] = [:]
    /// Bytes per counter.
    public var bytes: [XDPCounter: UInt64] = [:]

    /// Packets counted under `counter` (0 when absent).
    public subscript(counter: XDPCounter) -> UInt64 { packets[counter] ?? 0 }
}

/// An attachment of the program to one interface. Detaches when `detach()` is called or when
/// this object is freed; a process that dies detaches too (the kernel closes the link fd).
/// Control-plane object: use from one thread at a time.
public final class XDPAttachment {
    /// The interface's name.
    public let interface: String
    /// The interface's index.
    public let interfaceIndex: Int32
    /// The mode the kernel accepted.
    public let mode: XDPAttachMode
    private var linkFD: Int32

    init(interface: String, interfaceIndex: Int32, mode: XDPAttachMode, linkFD: Int32) {
        self.interface = interface
        self.interfaceIndex = interfaceIndex
        self.mode = mode
        self.linkFD = linkFD
    }

    /// Detaches the program from the interface. Idempotent.
    public func detach() {
        if linkFD >= 0 {
            close(linkFD)
            linkFD = -1
        }
    }

    deinit { detach() }
}

/// The loaded XDP steering program and its maps. Control-plane object: use from one thread at
/// a time; the maps it writes are read concurrently by the kernel, one element atomically.
public final class XDPProgram {
    /// The path the object was loaded from.
    public let objectPath: String
    private let object: OpaquePointer
    private let programFD: Int32
    /// File descriptor of the XSKMAP (queue index → AF_XDP socket).
    public let socketMapFD: Int32
    private let gatewayAddressMapFD: Int32
    private let counterMapFD: Int32
    /// Flow offload maps: offloaded flows (LRU hash), egress devmap, generation.
    let flowMapFD: Int32
    private let egressMapFD: Int32
    private let offloadGenerationMapFD: Int32
    /// The DNS redirect switch (-1 in an object built before it existed).
    private let dnsRedirectMapFD: Int32

    /// Finds the object file (see the file header for the search order), or nil.
    public static func locateObject(sourceFile: String = #filePath) -> String? {
        if let fromEnvironment = getenv("SLUICE_BPF_OBJECT") {
            return String(cString: fromEnvironment)
        }
        var candidates: [String] = []
        var executable = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &executable, executable.count - 1)
        if length > 0 {
            let path = String(decoding: executable[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            candidates.append(directory(of: path) + "/sluice_xdp.bpf.o")
        }
        // Sources/SluiceDataplane/XDPProgram.swift → the package root, three levels up.
        candidates.append(directory(of: directory(of: directory(of: sourceFile))) + "/bpf/build/sluice_xdp.bpf.o")
        return candidates.first { access($0, R_OK) == 0 }
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }

    /// Opens and loads the object (verifier included) at `path`, or at `locateObject()`.
    /// `offloadCapacity` sizes the offloaded-flow map (entries for packets arriving on the
    /// interface this instance is attached to; nil: the object's default).
    public init(objectPath path: String? = nil, offloadCapacity: Int? = nil) throws {
        guard let path = path ?? XDPProgram.locateObject() else {
            throw DataplaneError(
                "XDP object not found: run bpf/build.sh, or set SLUICE_BPF_OBJECT, or install sluice_xdp.bpf.o "
                    + "next to the executable")
        }
        guard access(path, R_OK) == 0 else { throw DataplaneError("XDP object \(path) is not readable") }
        System.raiseMemlockLimit()
        objectPath = path
        let object = try System.checkPointer("bpf_object__open_file(\(path))") { bpf_object__open_file(path, nil) }
        self.object = object
        do {
            if let offloadCapacity, let map = bpf_object__find_map_by_name(object, SLUICE_MAP_FLOWS) {
                _ = try System.check("bpf_map__set_max_entries(\(SLUICE_MAP_FLOWS))") {
                    bpf_map__set_max_entries(map, UInt32(clamping: max(offloadCapacity, 64)))
                }
            }
            _ = try System.check("bpf_object__load(\(path)): verifier or map creation failed") {
                bpf_object__load(object)
            }
            guard let program = bpf_object__find_program_by_name(object, SLUICE_XDP_PROG_NAME) else {
                throw DataplaneError("\(path) has no program named \(SLUICE_XDP_PROG_NAME)")
            }
            programFD = bpf_program__fd(program)
            socketMapFD = try XDPProgram.mapFD(object, SLUICE_MAP_XSKS, path)
            gatewayAddressMapFD = try XDPProgram.mapFD(object, SLUICE_MAP_GATEWAY_ADDRS, path)
            counterMapFD = try XDPProgram.mapFD(object, SLUICE_MAP_COUNTERS, path)
            flowMapFD = try XDPProgram.mapFD(object, SLUICE_MAP_FLOWS, path)
            egressMapFD = try XDPProgram.mapFD(object, SLUICE_MAP_EGRESS, path)
            offloadGenerationMapFD = try XDPProgram.mapFD(object, SLUICE_MAP_OFFLOAD_GEN, path)
            dnsRedirectMapFD = bpf_object__find_map_fd_by_name(object, SLUICE_MAP_DNS_REDIRECT)
            precondition(XDPCounter.allCases.count == Int(SLUICE_CTR_MAX.rawValue), "XDPCounter out of sync with sluice_maps.h")
        } catch {
            bpf_object__close(object)
            throw error
        }
    }

    private static func mapFD(_ object: OpaquePointer, _ name: String, _ path: String) throws -> Int32 {
        let fd = bpf_object__find_map_fd_by_name(object, name)
        if fd < 0 { throw DataplaneError("\(path) has no map named \(name)") }
        return fd
    }

    deinit { bpf_object__close(object) }

    /// Attaches the program to `interface` through a BPF link, natively when the driver can,
    /// else generically (logged). A copy of this program attached without a link (by an old
    /// version or by hand with `ip link set ... xdp`) is detached first (logged); any other
    /// program in the way is an error, never silently replaced.
    public func attach(to interface: String, log: (String) -> Void = { _ in }) throws -> XDPAttachment {
        let index = try System.interfaceIndex(interface)
        try replaceStaleProgram(interface: interface, index: index, log: log)
        do {
            return try attach(interface: interface, index: index, mode: .native)
        } catch let error as SystemError {
            log("XDP: native attach on \(interface) failed (\(error)); falling back to generic mode")
        }
        return try attach(interface: interface, index: index, mode: .generic)
    }

    private func attach(interface: String, index: Int32, mode: XDPAttachMode) throws -> XDPAttachment {
        var options = bpf_link_create_opts()
        options.sz = MemoryLayout<bpf_link_create_opts>.size
        options.flags = mode.flags
        let linkFD = try System.check("bpf_link_create(XDP, \(interface), \(mode.rawValue))") {
            bpf_link_create(programFD, index, BPF_XDP, &options)
        }
        return XDPAttachment(interface: interface, interfaceIndex: index, mode: mode, linkFD: linkFD)
    }

    private func replaceStaleProgram(interface: String, index: Int32, log: (String) -> Void) throws {
        for mode in [XDPAttachMode.native, .generic] {
            var name = [CChar](repeating: 0, count: 32)
            var id: UInt32 = 0
            let status = sluice_xdp_attached_program(index, mode.flags, &name, name.count, &id)
            if status < 0 { throw SystemError("bpf_xdp_query(\(interface))", code: status) }
            guard id != 0 else { continue }
            let attachedName = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard attachedName == SLUICE_XDP_PROG_NAME else {
                throw DataplaneError(
                    "\(interface) already has XDP program \(attachedName.isEmpty ? "?" : attachedName) (id \(id), "
                        + "\(mode.rawValue) mode) that is not Sluice's; detach it first (ip link set \(interface) xdp off)")
            }
            // A link-attached program (a live Sluice) refuses this with EBUSY: reported, not forced.
            let detached = bpf_xdp_detach(index, mode.flags, nil)
            if detached < 0 {
                throw DataplaneError(
                    "\(interface) has Sluice's XDP program (id \(id)) attached by another live process (its BPF link); "
                        + "stop that process first (\(SystemError("bpf_xdp_detach", code: detached)))")
            }
            log("XDP: replaced stale \(SLUICE_XDP_PROG_NAME) (id \(id), \(mode.rawValue) mode) on \(interface)")
        }
    }

    /// Makes the program pass UDP/TCP port-53 packets to the kernel (where nftables redirects them to the
    /// DNS proxy) instead of the workers; set on the inside interface's instance only.
    public func setDNSRedirect(_ enabled: Bool) throws {
        guard dnsRedirectMapFD >= 0 else {
            throw DataplaneError("\(objectPath) has no map \(SLUICE_MAP_DNS_REDIRECT): rebuild it (bpf/build.sh)")
        }
        var key: UInt32 = 0
        var value: UInt32 = enabled ? 1 : 0
        _ = try System.check("bpf_map_update_elem(\(SLUICE_MAP_DNS_REDIRECT))") {
            bpf_map_update_elem(dnsRedirectMapFD, &key, &value, UInt64(BPF_ANY))
        }
    }

    /// Replaces the set of addresses the program passes to the kernel (the gateway's own).
    public func setGatewayAddresses(_ addresses: [IPAddress]) throws {
        var stale: [sluice_addr_key] = []
        var key = sluice_addr_key()
        var next = sluice_addr_key()
        var hasKey = false
        while withUnsafePointer(to: &key, { current in
            bpf_map_get_next_key(gatewayAddressMapFD, hasKey ? current : nil, &next)
        }) == 0 {
            stale.append(next)
            key = next
            hasKey = true
        }
        let wanted = addresses.map(XDPProgram.key(for:))
        for var old in stale where !wanted.contains(where: { XDPProgram.sameKey($0, old) }) {
            _ = bpf_map_delete_elem(gatewayAddressMapFD, &old)
        }
        for var entry in wanted {
            var value = sluice_addr_value(flags: 0)
            _ = try System.check("bpf_map_update_elem(\(SLUICE_MAP_GATEWAY_ADDRS))") {
                bpf_map_update_elem(gatewayAddressMapFD, &entry, &value, UInt64(BPF_ANY))
            }
        }
    }

    static func key(for address: IPAddress) -> sluice_addr_key {
        var key = sluice_addr_key()  // zeroed, padding included: the hash compares all bytes
        withUnsafeMutableBytes(of: &key.addr) { bytes in
            switch address {
            case .v4(let value):
                key.family = UInt8(SLUICE_FAMILY_V4)
                for index in 0..<4 { bytes[index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32(index))) }
            case .v6(let value):
                key.family = UInt8(SLUICE_FAMILY_V6)
                for index in 0..<16 { bytes[index] = UInt8(truncatingIfNeeded: value >> (120 - 8 * UInt128(index))) }
            }
        }
        return key
    }

    private static func sameKey(_ a: sluice_addr_key, _ b: sluice_addr_key) -> Bool {
        var a = a
        var b = b
        return withUnsafeBytes(of: &a) { x in withUnsafeBytes(of: &b) { y in x.elementsEqual(y) } }
    }

    /// Puts the AF_XDP socket `socketFD` at `queue` of the XSKMAP, so the program steers that
    /// rx queue's transit packets to it.
    public func registerSocket(_ socketFD: Int32, queue: UInt32) throws {
        var key = queue
        var value = UInt32(bitPattern: socketFD)
        _ = try System.check("bpf_map_update_elem(\(SLUICE_MAP_XSKS), queue \(queue))") {
            bpf_map_update_elem(socketMapFD, &key, &value, UInt64(BPF_ANY))
        }
    }

    /// Removes the socket of `queue` from the XSKMAP: that queue's transit packets are dropped
    /// (and counted) by the program from now on.
    public func unregisterSocket(queue: UInt32) {
        var key = queue
        _ = bpf_map_delete_elem(socketMapFD, &key)
    }

    // MARK: - Flow offload (FlowOffload.swift drives these)

    /// Lets offloaded flows leave by `interfaceIndex` (a devmap entry).
    public func addEgress(interfaceIndex: Int32) throws {
        var key = UInt32(bitPattern: interfaceIndex)
        var value = key
        _ = try System.check("bpf_map_update_elem(\(SLUICE_MAP_EGRESS), ifindex \(interfaceIndex))") {
            bpf_map_update_elem(egressMapFD, &key, &value, UInt64(BPF_ANY))
        }
    }

    /// Sets the generation offloaded entries must carry to be used (0: offload off).
    public func setOffloadGeneration(_ generation: UInt32) throws {
        var key: UInt32 = 0
        var value = generation
        _ = try System.check("bpf_map_update_elem(\(SLUICE_MAP_OFFLOAD_GEN))") {
            bpf_map_update_elem(offloadGenerationMapFD, &key, &value, UInt64(BPF_ANY))
        }
    }

    /// The generation offloaded entries must carry now (0: off).
    public func offloadGeneration() -> UInt32 {
        var key: UInt32 = 0
        var value: UInt32 = 0
        _ = bpf_map_lookup_elem(offloadGenerationMapFD, &key, &value)
        return value
    }

    /// Writes `count` entries of the offloaded-flow map in one system call.
    func installFlows(_ keys: UnsafeMutablePointer<sluice_flow_key>, _ values: UnsafeMutablePointer<sluice_flow_value>,
                      count: Int) throws {
        guard count > 0 else { return }
        var written = UInt32(count)
        var options = bpf_map_batch_opts()
        options.sz = MemoryLayout<bpf_map_batch_opts>.size
        options.elem_flags = UInt64(BPF_ANY)
        _ = try System.check("bpf_map_update_batch(\(SLUICE_MAP_FLOWS))") {
            bpf_map_update_batch(flowMapFD, keys, values, &written, &options)
        }
    }

    /// Deletes one entry of the offloaded-flow map (absent is fine: LRU may have evicted it).
    func removeFlow(_ key: sluice_flow_key) {
        var key = key
        _ = bpf_map_delete_elem(flowMapFD, &key)
    }

    /// Calls `body` with every entry of the offloaded-flow map, read in batches of `chunk`
    /// (a few system calls for thousands of flows). Entries may change while it runs.
    func forEachFlow(chunk: Int = 1024, _ body: (sluice_flow_key, sluice_flow_value) -> Void) {
        let keys = UnsafeMutablePointer<sluice_flow_key>.allocate(capacity: chunk)
        let values = UnsafeMutablePointer<sluice_flow_value>.allocate(capacity: chunk)
        defer {
            keys.deallocate()
            values.deallocate()
        }
        var options = bpf_map_batch_opts()
        options.sz = MemoryLayout<bpf_map_batch_opts>.size
        // The hash map's batch cursor is a bucket index (u32); 8 bytes leave room.
        var cursor: UInt64 = 0
        var next: UInt64 = 0
        var first = true
        while true {
            var count = UInt32(chunk)
            let status = withUnsafeMutablePointer(to: &cursor) { current in
                bpf_map_lookup_batch(flowMapFD, first ? nil : UnsafeMutableRawPointer(current), &next, keys, values,
                                     &count, &options)
            }
            for index in 0..<Int(count) { body(keys[index], values[index]) }
            // ENOENT: the last batch (count may still be > 0). Other errors: stop, next pass retries.
            if status != 0 { return }
            cursor = next
            first = false
        }
    }

    /// Reads the per-CPU counters and sums them.
    public func counters() throws -> XDPCounters {
        let cpus = Int(try System.check("libbpf_num_possible_cpus") { sluice_possible_cpus() })
        var values = [sluice_counter](repeating: sluice_counter(), count: cpus)
        var snapshot = XDPCounters()
        for counter in XDPCounter.allCases {
            var key = counter.mapIndex
            _ = try System.check("bpf_map_lookup_elem(\(SLUICE_MAP_COUNTERS))") {
                bpf_map_lookup_elem(counterMapFD, &key, &values)
            }
            snapshot.packets[counter] = values.reduce(0) { $0 + $1.packets }
            snapshot.bytes[counter] = values.reduce(0) { $0 + $1.bytes }
        }
        return snapshot
    }
}

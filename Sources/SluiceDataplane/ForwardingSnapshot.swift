// Where a packet goes next: the kernel's main routing table and neighbour table for the two
// gateway interfaces, read over rtnetlink by the control plane (every few hundred milliseconds
// and when a worker asks for a missing neighbour), frozen into flat sorted buffers and published
// to the workers like the policy (Publication). Workers look routes up by longest prefix and
// neighbours by binary search, without allocation or locks; a missing neighbour is dropped,
// counted, and queued for resolution (the kernel sends the ARP / neighbour solicitation).

#if canImport(Glibc)
import Glibc
#endif
import CSluiceXDP
import SluicePacket
import SluicePolicy

/// A frozen copy of the routes and neighbours that matter for forwarding. Immutable; any thread.
public final class ForwardingSnapshot: @unchecked Sendable {
    /// One gateway interface.
    public struct Interface: Sendable, Equatable {
        /// Kernel interface index.
        public var index: Int32
        /// Its MAC address (source of the frames it sends).
        public var mac: MACAddress
        /// An IPv4 address of it (source of ICMP errors it sends), 0 when none.
        public var ipv4: UInt32
        /// A global IPv6 address of it (or link-local when it has none), 0 when none.
        public var ipv6: UInt128

        public init(index: Int32, mac: MACAddress, ipv4: UInt32 = 0, ipv6: UInt128 = 0) {
            self.index = index
            self.mac = mac
            self.ipv4 = ipv4
            self.ipv6 = ipv6
        }
    }

    /// One route (addresses host order, IPv4 zero-extended as in `FiveTuple`).
    public struct Route: Sendable, Equatable {
        public var family: IPFamily
        public var prefixLength: UInt8
        public var prefix: UInt128
        /// Next hop; nil when the destination is on the link.
        public var gateway: UInt128?
        public var interfaceIndex: Int32
        public var metric: UInt32

        public init(family: IPFamily, prefix: UInt128, prefixLength: UInt8, gateway: UInt128?, interfaceIndex: Int32,
                    metric: UInt32 = 0) {
            self.family = family
            self.prefix = prefix
            self.prefixLength = prefixLength
            self.gateway = gateway
            self.interfaceIndex = interfaceIndex
            self.metric = metric
        }
    }

    /// One resolved neighbour.
    public struct Neighbour: Sendable, Equatable {
        public var interfaceIndex: Int32
        public var family: IPFamily
        public var address: UInt128
        public var mac: MACAddress

        public init(interfaceIndex: Int32, family: IPFamily, address: UInt128, mac: MACAddress) {
            self.interfaceIndex = interfaceIndex
            self.family = family
            self.address = address
            self.mac = mac
        }
    }

    /// The inside and outside interfaces.
    public let inside: Interface
    public let outside: Interface
    let routes: UnsafeMutableBufferPointer<Route>
    let neighbours: UnsafeMutableBufferPointer<Neighbour>

    /// A snapshot of given tables (tests build these by hand; `read` asks the kernel).
    public init(inside: Interface, outside: Interface, routes: [Route], neighbours: [Neighbour]) {
        self.inside = inside
        self.outside = outside
        // Longest prefix first, then lowest metric: the first match is the kernel's choice.
        let sortedRoutes = routes.sorted {
            ($0.prefixLength, UInt32.max - $0.metric) > ($1.prefixLength, UInt32.max - $1.metric)
        }
        self.routes = .allocate(capacity: max(sortedRoutes.count, 1))
        _ = self.routes.initialize(from: sortedRoutes)
        let sortedNeighbours = neighbours.sorted { ForwardingSnapshot.less($0, $1) }
        self.neighbours = .allocate(capacity: max(sortedNeighbours.count, 1))
        _ = self.neighbours.initialize(from: sortedNeighbours)
        routeCount = sortedRoutes.count
        neighbourCount = sortedNeighbours.count
    }

    let routeCount: Int
    let neighbourCount: Int

    deinit {
        routes.deallocate()
        neighbours.deallocate()
    }

    @inline(__always)
    static func less(_ a: Neighbour, _ b: Neighbour) -> Bool {
        (a.interfaceIndex, a.family.rawValue, a.address) < (b.interfaceIndex, b.family.rawValue, b.address)
    }

    /// The interface of `side`.
    @inline(__always)
    public func interface(_ side: Side) -> Interface { side == .inside ? inside : outside }

    /// The next hop address for `destination` leaving by `interfaceIndex`, or nil when the
    /// kernel's best route for it leaves by another interface (or there is none).
    @inline(__always)
    public func nextHop(family: IPFamily, destination: UInt128, interfaceIndex: Int32) -> UInt128? {
        let width = family == .v4 ? 32 : 128
        var index = 0
        while index < routeCount {
            let route = routes[index]
            index += 1
            guard route.family == family else { continue }
            let shift = width - Int(route.prefixLength)
            let matches = route.prefixLength == 0
                || (shift >= 128 ? true : (destination >> UInt128(shift)) == (route.prefix >> UInt128(shift)))
            guard matches else { continue }
            guard route.interfaceIndex == interfaceIndex else { return nil }
            return route.gateway ?? destination
        }
        return nil
    }

    /// The MAC address of neighbour `address` on `interfaceIndex`, or nil when unresolved.
    @inline(__always)
    public func neighbourMAC(interfaceIndex: Int32, family: IPFamily, address: UInt128) -> MACAddress? {
        let wanted = Neighbour(interfaceIndex: interfaceIndex, family: family, address: address, mac: MACAddress(0))
        var low = 0
        var high = neighbourCount
        while low < high {
            let middle = (low + high) >> 1
            if ForwardingSnapshot.less(neighbours[middle], wanted) { low = middle + 1 } else { high = middle }
        }
        guard low < neighbourCount else { return nil }
        let found = neighbours[low]
        guard found.interfaceIndex == interfaceIndex && found.family == family && found.address == address else {
            return nil
        }
        return found.mac
    }
}

// MARK: - Reading the kernel's tables

extension ForwardingSnapshot {
    /// Reads the main routing table and the neighbour table over rtnetlink and the interfaces'
    /// MAC and IP addresses, keeping what concerns `inside` and `outside`. Control plane.
    public static func read(inside: String, outside: String) throws -> ForwardingSnapshot {
        let interfaces = try InterfaceAddresses.read()
        guard let insideInterface = interfaces.interface(named: inside) else {
            throw DataplaneError("interface \(inside) not found")
        }
        guard let outsideInterface = interfaces.interface(named: outside) else {
            throw DataplaneError("interface \(outside) not found")
        }
        let wanted: Set<Int32> = [insideInterface.index, outsideInterface.index]
        var routes: [Route] = []
        var neighbours: [Neighbour] = []
        for family in [AF_INET, AF_INET6] {
            let ipFamily: IPFamily = family == AF_INET ? .v4 : .v6
            for entry in try readRoutes(family: Int32(family)) where wanted.contains(Int32(bitPattern: entry.oif)) {
                var copy = entry
                let prefix = withUnsafeBytes(of: &copy.dst) { address(ipFamily, $0) }
                let gateway: UInt128? =
                    entry.has_gateway != 0 ? withUnsafeBytes(of: &copy.gateway) { address(ipFamily, $0) } : nil
                routes.append(Route(family: ipFamily, prefix: prefix, prefixLength: entry.dst_len, gateway: gateway,
                                    interfaceIndex: Int32(bitPattern: entry.oif), metric: entry.priority))
            }
            for entry in try readNeighbours(family: Int32(family))
            where wanted.contains(Int32(bitPattern: entry.ifindex)) {
                // Usable states: REACHABLE, STALE, DELAY, PROBE, NOARP, PERMANENT (not INCOMPLETE/FAILED).
                guard entry.has_lladdr != 0, entry.state & 0xDE != 0 else { continue }
                var copy = entry
                let neighbourAddress = withUnsafeBytes(of: &copy.addr) { address(ipFamily, $0) }
                let mac = withUnsafeBytes(of: &copy.lladdr) { MACAddress(from: $0, at: 0) }
                neighbours.append(Neighbour(interfaceIndex: Int32(bitPattern: entry.ifindex), family: ipFamily,
                                            address: neighbourAddress, mac: mac))
            }
        }
        return ForwardingSnapshot(inside: insideInterface, outside: outsideInterface, routes: routes,
                                  neighbours: neighbours)
    }

    static func address(_ family: IPFamily, _ bytes: UnsafeRawBufferPointer) -> UInt128 {
        var value: UInt128 = 0
        for index in 0..<(family == .v4 ? 4 : 16) { value = value << 8 | UInt128(bytes[index]) }
        return value
    }

    static func readRoutes(family: Int32) throws -> [sluice_route] {
        var capacity = 256
        while true {
            var buffer = [sluice_route](repeating: sluice_route(), count: capacity)
            let count = sluice_nl_routes(family, &buffer, Int32(capacity))
            if count == -ENOSPC && capacity < 1 << 20 {
                capacity *= 4
                continue
            }
            if count < 0 { throw SystemError("rtnetlink RTM_GETROUTE dump", code: count) }
            return Array(buffer.prefix(Int(count)))
        }
    }

    static func readNeighbours(family: Int32) throws -> [sluice_neighbour] {
        var capacity = 1024
        while true {
            var buffer = [sluice_neighbour](repeating: sluice_neighbour(), count: capacity)
            let count = sluice_nl_neighbours(family, &buffer, Int32(capacity))
            if count == -ENOSPC && capacity < 1 << 22 {
                capacity *= 4
                continue
            }
            if count < 0 { throw SystemError("rtnetlink RTM_GETNEIGH dump", code: count) }
            return Array(buffer.prefix(Int(count)))
        }
    }

    /// Asks the kernel to resolve `address` on `interfaceIndex` (it sends ARP or a neighbour
    /// solicitation; the answer reaches the kernel because XDP passes ARP and ND). Control plane.
    public static func resolveNeighbour(interfaceIndex: Int32, family: IPFamily, address: UInt128) throws {
        var bytes = [UInt8](repeating: 0, count: 16)
        let width = family == .v4 ? 4 : 16
        for index in 0..<width { bytes[index] = UInt8(truncatingIfNeeded: address >> UInt128(8 * (width - 1 - index))) }
        let status = sluice_nl_neighbour_resolve(interfaceIndex, family == .v4 ? AF_INET : AF_INET6, bytes)
        if status < 0 { throw SystemError("rtnetlink RTM_NEWNEIGH NTF_USE", code: status) }
    }
}

/// The addresses of the host's interfaces (getifaddrs). Control plane.
struct InterfaceAddresses {
    struct Entry {
        var name: String
        var index: Int32
        var mac: MACAddress?
        var ipv4: [UInt32] = []
        var ipv6: [UInt128] = []
    }

    var entries: [String: Entry] = [:]

    static func read() throws -> InterfaceAddresses {
        var list: UnsafeMutablePointer<ifaddrs>? = nil
        guard getifaddrs(&list) == 0 else { throw SystemError("getifaddrs", code: errno) }
        defer { freeifaddrs(list) }
        var result = InterfaceAddresses()
        var cursor = list
        while let item = cursor {
            cursor = item.pointee.ifa_next
            guard let namePointer = item.pointee.ifa_name, let address = item.pointee.ifa_addr else { continue }
            let name = String(cString: namePointer)
            var entry = result.entries[name]
                ?? Entry(name: name, index: Int32(bitPattern: if_nametoindex(namePointer)), mac: nil)
            switch Int32(address.pointee.sa_family) {
            case AF_PACKET:
                address.withMemoryRebound(to: sockaddr_ll.self, capacity: 1) { link in
                    if link.pointee.sll_halen == 6 {
                        var bytes = link.pointee.sll_addr
                        entry.mac = withUnsafeBytes(of: &bytes) { MACAddress(from: $0, at: 0) }
                    }
                }
            case AF_INET:
                address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                    entry.ipv4.append(UInt32(bigEndian: v4.pointee.sin_addr.s_addr))
                }
            case AF_INET6:
                address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                    var bytes = v6.pointee.sin6_addr
                    entry.ipv6.append(withUnsafeBytes(of: &bytes) { ForwardingSnapshot.address(.v6, $0) })
                }
            default:
                break
            }
            result.entries[name] = entry
        }
        return result
    }

    func interface(named name: String) -> ForwardingSnapshot.Interface? {
        guard let entry = entries[name], entry.index > 0 else { return nil }
        let global = entry.ipv6.first { $0 >> 118 != 0x3FA }  // not fe80::/10
        return ForwardingSnapshot.Interface(
            index: entry.index, mac: entry.mac ?? MACAddress(0), ipv4: entry.ipv4.first ?? 0,
            ipv6: global ?? entry.ipv6.first ?? 0)
    }

    /// Every address of every interface: what the XDP program must pass to the kernel.
    var allAddresses: [IPAddress] {
        entries.values.flatMap { entry in entry.ipv4.map { IPAddress.v4($0) } + entry.ipv6.map { IPAddress.v6($0) } }
    }
}

// Seeded generators of policies and packets, shared by the differential test (many small,
// overlapping policies where every branch of the semantics is hit) and the classification
// benchmark (ClassBench-like rule sets of 100 to 100,000 rules). Same seed, same output.
import SluicePolicy

/// A small, fast, seedable random number generator (SplitMix64).
public struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Generates policies and packets that exercise them.
public struct PolicyGenerator {
    /// The shape of what is generated.
    public enum Profile: Sendable {
        /// Few addresses, ports and protocols, so that rules overlap and every branch is taken:
        /// for comparing evaluators.
        case dense
        /// ClassBench-like: mixed prefix lengths over a wide address space, exact ports, well-known
        /// ranges and wildcards, a realistic protocol mix: for measuring.
        case classBench
    }

    public var random: SeededRandom
    public let profile: Profile

    public init(seed: UInt64, profile: Profile) {
        random = SeededRandom(seed: seed)
        self.profile = profile
    }

    mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &random) < probability }

    mutating func pick<T>(_ choices: [T]) -> T { choices[Int.random(in: 0..<choices.count, using: &random)] }

    // MARK: - Addresses

    mutating func prefix4(base: UInt32, baseLength: Int, lengths: ClosedRange<Int>) -> IPPrefix {
        let length = Int.random(in: lengths, using: &random)
        let free = UInt32(truncatingIfNeeded: random.next()) & (baseLength == 0 ? ~0 : ~(~UInt32(0) << (32 - baseLength)))
        let address = IPAddress.v4(base | free)
        return IPPrefix(address: maskedV4(address, length), length: length)!
    }

    func maskedV4(_ address: IPAddress, _ length: Int) -> IPAddress {
        guard case .v4(let value) = address else { return address }
        return .v4(length == 0 ? 0 : value & ~UInt32(0) << (32 - length))
    }

    mutating func prefix6(lengths: ClosedRange<Int>) -> IPPrefix {
        let length = Int.random(in: lengths, using: &random)
        let base: UInt128 = 0x2001_0db8 << 96
        var value = base | (UInt128(random.next()) << 32 | UInt128(random.next() & 0xffff_ffff)) & ((UInt128(1) << 96) - 1)
        if length < 128 { value &= ~((UInt128(1) << (128 - length)) - 1) }
        return IPPrefix(address: .v6(value), length: length)!
    }

    /// A random address inside `prefix`.
    public mutating func address(in prefix: IPPrefix) -> IPAddress {
        switch prefix.address {
        case .v4(let value):
            let host = prefix.length == 32 ? 0 : UInt32(truncatingIfNeeded: random.next()) & ~(~UInt32(0) << (32 - prefix.length))
            return .v4(value | host)
        case .v6(let value):
            let bits = UInt128(random.next()) << 64 | UInt128(random.next())
            let host = prefix.length == 128 ? 0 : bits & ((UInt128(1) << (128 - prefix.length)) - 1)
            return .v6(value | host)
        }
    }

    // MARK: - Policies

    mutating func sourcePrefix() -> IPPrefix {
        switch profile {
        case .dense:
            return chance(0.2) ? prefix6(lengths: 32...64) : prefix4(base: 0x0a00_0000, baseLength: 12, lengths: 10...24)
        case .classBench:
            return chance(0.1) ? prefix6(lengths: 40...64) : prefix4(base: 0x0a00_0000, baseLength: 8, lengths: 16...28)
        }
    }

    mutating func destinationPrefix() -> IPPrefix {
        switch profile {
        case .dense:
            return chance(0.2) ? prefix6(lengths: 30...40) : prefix4(base: 0xc000_0000, baseLength: 14, lengths: 14...24)
        case .classBench:
            if chance(0.1) { return prefix6(lengths: 32...128) }
            return prefix4(base: 0, baseLength: 0, lengths: pick([8...16, 16...24, 24...32, 32...32]))
        }
    }

    mutating func portRange() -> PortRange {
        switch profile {
        case .dense:
            let low = UInt16(pick([0, 22, 53, 80, 443, 1024, 8000]))
            return PortRange(low, low + UInt16(pick([0, 0, 10, 1000])))!
        case .classBench:
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<5: return PortRange(port: pick([22, 25, 53, 80, 110, 123, 143, 443, 993, 3306, 5432, 6379, 8080, 8443]))
            case 5..<7: return PortRange(1024, 65535)!
            case 7: return PortRange(0, 1023)!
            default:
                let low = UInt16.random(in: 1024...60000, using: &random)
                return PortRange(low, low + UInt16.random(in: 1...5000, using: &random))!
            }
        }
    }

    mutating func match() -> RuleMatchConfig {
        var match = RuleMatchConfig()
        let proto: ProtoValue? = pick([nil, .tcp, .tcp, .udp, .icmp, .icmpv6, .any, .number(47)])
        match.proto = proto
        let dstCount = profile == .dense ? pick([0, 0, 1, 2]) : pick([0, 1, 1, 1, 2])
        for _ in 0..<dstCount {
            if chance(0.25) {
                let prefix = destinationPrefix()
                match.dstIps.append(address(in: prefix))
            } else {
                match.dstCidrs.append(destinationPrefix())
            }
        }
        let hasPorts = proto == nil || proto == .tcp || proto == .udp || proto == .any
        if hasPorts {
            if chance(profile == .dense ? 0.5 : 0.8) { match.dstPorts = (0..<pick([1, 1, 2])).map { _ in portRange() } }
            if chance(profile == .dense ? 0.3 : 0.2) { match.srcPorts = [portRange()] }
        }
        if proto?.isICMP == true || (proto == .any && chance(0.2)) {
            if chance(0.5) { match.icmpTypes = (0..<pick([1, 2])).map { _ in pick([0, 3, 8, 11, 128, 129, 5]) } }
            if chance(0.3) { match.icmpCodes = [pick([0, 1, 3])] }
        }
        if profile == .dense && (proto == .tcp || proto == nil) && chance(0.05) {
            match.tls = TlsMatchConfig(sni: TlsNameMatch(exact: ["api.example.com"], encoding: .list))
        }
        if profile == .dense && chance(0.1) {
            match.dnsHostname = try? HostnamePattern(pick(["api.example.com", "*.example.org"]))
        }
        return match
    }

    /// A policy of `groups` source groups with about `rulesPerGroup` rules each.
    public mutating func policy(groups: Int, rulesPerGroup: Int) -> PolicyConfig {
        var config = PolicyConfig(defaultPolicy: pick([nil, .allow, .deny]))
        let audit = profile == .dense ? 0.15 : 0.02
        for groupIndex in 0..<groups {
            var sources = SourcesConfig()
            for _ in 0..<pick([1, 1, 2, 3]) {
                if chance(0.2) { sources.ips.append(address(in: sourcePrefix())) } else { sources.cidrs.append(sourcePrefix()) }
            }
            let ruleCount = profile == .dense ? Int.random(in: 0...rulesPerGroup, using: &random) : rulesPerGroup
            var rules: [RuleConfig] = []
            for ruleIndex in 0..<ruleCount {
                rules.append(RuleConfig(id: "r\(ruleIndex)", priority: chance(0.3) ? Int.random(in: 0...5, using: &random) : nil,
                                        action: chance(0.5) ? .allow : .deny, mode: chance(audit) ? .audit : pick([nil, .enforce]),
                                        match: match()))
            }
            config.sourceGroups.append(SourceGroupConfig(
                id: "g\(groupIndex)", priority: chance(0.4) ? Int.random(in: 0...3, using: &random) : nil,
                sources: sources, rules: rules, defaultAction: pick([nil, nil, .allow, .deny]),
                mode: chance(audit) ? .audit : nil))
        }
        return config
    }

    // MARK: - Packets

    /// Packets aimed at the policy: sources and destinations mostly drawn from its own prefixes.
    public mutating func packets(for policy: PolicyConfig, count: Int) -> [PacketQuery] {
        let rules = policy.sourceGroups.flatMap(\.rules)
        return (0..<count).map { _ in packet(groups: policy.sourceGroups, rules: rules) }
    }

    mutating func packet(groups: [SourceGroupConfig], rules: [RuleConfig]) -> PacketQuery {
        let v6 = chance(0.2)
        var src: IPAddress
        if !groups.isEmpty, chance(0.9) {
            let sources = pick(groups).sources
            let prefixes = (sources.cidrs + sources.ips.map { IPPrefix(host: $0) }).filter { $0.address.isV4 != v6 }
            src = prefixes.isEmpty ? address(in: v6 ? prefix6(lengths: 64...64) : sourcePrefix()) : address(in: pick(prefixes))
        } else {
            src = address(in: v6 ? prefix6(lengths: 48...48) : prefix4(base: 0x0a00_0000, baseLength: 8, lengths: 16...16))
        }
        if src.isV4 == v6 { src = v6 ? address(in: prefix6(lengths: 64...64)) : address(in: sourcePrefix()) }
        var dst: IPAddress = v6 ? address(in: prefix6(lengths: 32...32)) : address(in: destinationPrefix())
        if !rules.isEmpty, chance(0.8) {
            let match = pick(rules).match
            let prefixes = (match.dstCidrs + match.dstIps.map { IPPrefix(host: $0) }).filter { $0.address.isV4 != v6 }
            if !prefixes.isEmpty { dst = address(in: pick(prefixes)) }
        }
        if dst.isV4 != src.isV4 { dst = src.isV4 ? .v4(0xc000_0201) : .v6(0x2001_0db8 << 96 | 1) }
        let proto: UInt8 = pick(src.isV4 ? [6, 6, 17, 1, 47] : [6, 17, 58, 58])
        let ports: [UInt16] = [0, 22, 53, 80, 443, 1023, 1024, 1030, 8000, 8010, 65535]
        return PacketQuery(src: src, dst: dst, proto: proto,
                           srcPort: chance(0.5) ? pick(ports) : UInt16.random(in: 0...65535, using: &random),
                           dstPort: chance(0.7) ? pick(ports) : UInt16.random(in: 0...65535, using: &random),
                           icmpType: pick([0, 3, 5, 8, 11, 12, 128, 129, 133]), icmpCode: pick([0, 1, 3]))
    }
}

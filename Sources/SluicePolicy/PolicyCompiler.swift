// Builds a `CompiledPolicy` from a checked policy: orders groups and rules as the policy model
// says, cuts each dimension into intervals with `IntervalSweep`, stores each distinct rule bit
// set once and lays everything out in flat pools. Runs on the control plane, never per packet.

/// Compiles policies into `CompiledPolicy` tables.
public enum PolicyCompiler {
    /// Compiles a checked policy request.
    public static func compile(_ request: PolicyRequest) -> CompiledPolicy {
        compile(mode: request.mode, policy: request.policy)
    }

    /// Compiles a policy for the given mode.
    public static func compile(mode: PolicyMode, policy: PolicyConfig) -> CompiledPolicy {
        var builder = Builder()
        let groupOrder = PolicyOrder.sorted(policy.sourceGroups.map(\.priority))
        for groupIndex in groupOrder {
            builder.addGroup(policy.sourceGroups[groupIndex], documentIndex: groupIndex)
        }
        builder.addSources(policy.sourceGroups, order: groupOrder)
        return CompiledPolicy(mode: mode, defaultPolicy: policy.defaultPolicy ?? .deny,
                              groupIDs: policy.sourceGroups.map(\.id),
                              ruleIDs: policy.sourceGroups.map { $0.rules.map(\.id) },
                              pool32: builder.pool32, pool128: builder.pool128, bits: builder.bits,
                              groups: builder.groups, rules: builder.rules,
                              sources4: builder.sources4, sources6: builder.sources6, tlsBlocks: builder.tlsBlocks)
    }

    struct Builder {
        var pool32: [UInt32] = []
        var pool128: [UInt128] = []
        var bits: [UInt64] = []
        var groups: [GroupRecord] = []
        var rules: [RuleRecord] = []
        /// Parallel to `rules`: each rule's `tls` block.
        var tlsBlocks: [TlsMatchConfig?] = []
        var sources4 = IntervalRef()
        var sources6 = IntervalRef()
        /// Offsets of bit sets already stored, so each distinct set is stored once.
        var stored: [BitSet: UInt32] = [:]

        mutating func store(_ set: BitSet) -> UInt32 {
            if let offset = stored[set] { return offset }
            let offset = UInt32(bits.count)
            bits.append(contentsOf: set.words)
            stored[set] = offset
            return offset
        }

        /// Stores an interval map over 32-bit keys.
        mutating func store32(_ sweep: IntervalSweep<UInt32>) -> IntervalRef {
            var ref = Builder.storeTree(sweep.starts, in: &pool32)
            ref.values = Int32(pool32.count)
            for set in sweep.sets { pool32.append(store(set)) }
            return ref
        }

        /// Stores an interval map over IPv6 keys (starts in the 128-bit pool, values in the 32-bit one).
        mutating func store128(_ sweep: IntervalSweep<UInt128>) -> IntervalRef {
            var ref = Builder.storeTree(sweep.starts, in: &pool128)
            ref.values = Int32(pool32.count)
            for set in sweep.sets { pool32.append(store(set)) }
            return ref
        }

        /// Lays out sorted keys as the cache-line search tree `CompiledPolicy.search` walks: the
        /// leaves, then the levels above top-down, each starting on a cache line.
        static func storeTree<Key: SearchKey>(_ keys: [Key], in pool: inout [Key]) -> IntervalRef {
            let shift = fanoutShift(Key.self)
            let fanout = 1 << shift
            func align() { while pool.count % fanout != 0 { pool.append(Key.max) } }
            align()
            var ref = IntervalRef()
            ref.start = Int32(pool.count)
            ref.count = Int32(keys.count)
            pool.append(contentsOf: keys)
            var levels: [[Key]] = []
            var level = keys
            while level.count > fanout {
                level = stride(from: 0, to: level.count, by: fanout).map { level[$0] }
                levels.append(level)
            }
            ref.levels = Int32(levels.count)
            align()
            ref.upper = Int32(pool.count)
            for upper in levels.reversed() {
                pool.append(contentsOf: upper)
                align()
            }
            // A search reads whole lines; a map with no keys still gets one line of padding.
            if keys.isEmpty { pool.append(contentsOf: repeatElement(Key.max, count: fanout)) }
            return ref
        }

        /// Stores a direct table: the bit set of every key 0..<count.
        mutating func storeTable(count: Int, base: BitSet, specific: [(key: Int, bit: Int)]) -> Int32 {
            var sets = Array(repeating: base, count: count)
            for entry in specific { sets[entry.key].insert(entry.bit) }
            let offset = Int32(pool32.count)
            for set in sets { pool32.append(store(set)) }
            return offset
        }

        mutating func addGroup(_ group: SourceGroupConfig, documentIndex: Int) {
            let order = PolicyOrder.sorted(group.rules.map(\.priority))
            let ruleCount = order.count
            // At least one word, so a group without rules still has valid (empty) sets.
            let wordCount = max(1, (ruleCount + 63) / 64)
            let empty = BitSet(wordCount: wordCount)

            var record = GroupRecord()
            record.ruleBase = Int32(rules.count)
            record.wordCount = Int32(wordCount)
            record.documentIndex = Int32(documentIndex)
            record.audit = group.mode == .audit
            record.emptySet = Int32(store(empty))
            record.defaultAction = group.defaultAction.map { $0 == .allow ? ActionCode.allow : ActionCode.deny } ?? 0

            var dstAny = empty, dst4: [(lower: UInt32, upper: UInt32, bit: Int)] = []
            var dst6: [(lower: UInt128, upper: UInt128, bit: Int)] = []
            var protoAny = empty, protoSpecific: [(key: Int, bit: Int)] = []
            var sportAny = empty, sports: [(lower: UInt32, upper: UInt32, bit: Int)] = []
            var dportAny = empty, dports: [(lower: UInt32, upper: UInt32, bit: Int)] = []
            var typeAny = empty, types: [(key: Int, bit: Int)] = []
            var codeAny = empty, codes: [(key: Int, bit: Int)] = []

            for (bit, ruleIndex) in order.enumerated() {
                let rule = group.rules[ruleIndex]
                let match = rule.match
                rules.append(RuleRecord(action: rule.action == .allow ? ActionCode.allow : ActionCode.deny,
                                        audit: rule.mode == .audit, needsTLS: match.tls != nil,
                                        needsLearned: match.dnsHostname != nil, documentGroup: Int32(documentIndex),
                                        documentRule: Int32(ruleIndex)))
                tlsBlocks.append(match.tls)
                let destinations = match.dstCidrs + match.dstIps.map { IPPrefix(host: $0) }
                if destinations.isEmpty { dstAny.insert(bit) }
                for prefix in destinations {
                    let range = prefix.range
                    if prefix.address.isV4 {
                        dst4.append((UInt32(range.lowerBound), UInt32(range.upperBound), bit))
                    } else {
                        dst6.append((range.lowerBound, range.upperBound, bit))
                    }
                }
                // A TLS rule only ever matches TCP, whatever its proto says.
                switch (match.proto ?? .any, match.tls != nil) {
                case (.any, false): protoAny.insert(bit)
                case (.any, true): protoSpecific.append((6, bit))
                case (.number(let number), _): protoSpecific.append((Int(number), bit))
                }
                if match.srcPorts.isEmpty { sportAny.insert(bit) }
                for range in match.srcPorts { sports.append((UInt32(range.lower), UInt32(range.upper), bit)) }
                if match.dstPorts.isEmpty { dportAny.insert(bit) }
                for range in match.dstPorts { dports.append((UInt32(range.lower), UInt32(range.upper), bit)) }
                let effectiveTypes = match.effectiveICMPTypes
                if effectiveTypes.isEmpty { typeAny.insert(bit) }
                for type in effectiveTypes { types.append((Int(type), bit)) }
                if match.icmpCodes.isEmpty { codeAny.insert(bit) }
                for code in match.icmpCodes { codes.append((Int(code), bit)) }
            }

            record.dst4 = store32(IntervalSweep(ranges: dst4, base: dstAny, bitCount: ruleCount, upperBound: UInt32.max))
            record.dst6 = store128(IntervalSweep(ranges: dst6, base: dstAny, bitCount: ruleCount,
                                                 upperBound: UInt128.max))
            record.srcPorts = store32(IntervalSweep(ranges: sports, base: sportAny, bitCount: ruleCount,
                                                    upperBound: portlessKey))
            record.dstPorts = store32(IntervalSweep(ranges: dports, base: dportAny, bitCount: ruleCount,
                                                    upperBound: portlessKey))
            record.protoTable = storeTable(count: 256, base: protoAny, specific: protoSpecific)
            record.icmpTypeTable = storeTable(count: notICMPKey + 1, base: typeAny, specific: types)
            record.icmpCodeTable = storeTable(count: notICMPKey + 1, base: codeAny, specific: codes)
            groups.append(record)
        }

        /// Builds the source maps: for every source interval, the groups containing it, in
        /// evaluation order, stored as `[count, group...]` lists in the 32-bit pool.
        mutating func addSources(_ sourceGroups: [SourceGroupConfig], order: [Int]) {
            var ranges4: [(lower: UInt32, upper: UInt32, bit: Int)] = []
            var ranges6: [(lower: UInt128, upper: UInt128, bit: Int)] = []
            for (position, groupIndex) in order.enumerated() {
                let sources = sourceGroups[groupIndex].sources
                for prefix in sources.cidrs + sources.ips.map({ IPPrefix(host: $0) }) {
                    let range = prefix.range
                    if prefix.address.isV4 {
                        ranges4.append((UInt32(range.lowerBound), UInt32(range.upperBound), position))
                    } else {
                        ranges6.append((range.lowerBound, range.upperBound, position))
                    }
                }
            }
            let words = max(1, (order.count + 63) / 64)
            let none = BitSet(wordCount: words)
            var lists: [BitSet: UInt32] = [:]
            func list(_ set: BitSet, _ pool: inout [UInt32]) -> UInt32 {
                if let offset = lists[set] { return offset }
                let members = set.members
                let offset = UInt32(pool.count)
                pool.append(UInt32(members.count))
                pool.append(contentsOf: members.map(UInt32.init))
                lists[set] = offset
                return offset
            }
            let sweep4 = IntervalSweep(ranges: ranges4, base: none, bitCount: order.count, upperBound: UInt32.max)
            let sweep6 = IntervalSweep(ranges: ranges6, base: none, bitCount: order.count, upperBound: UInt128.max)
            let offsets4 = sweep4.sets.map { list($0, &pool32) }
            let offsets6 = sweep6.sets.map { list($0, &pool32) }
            sources4 = Builder.storeTree(sweep4.starts, in: &pool32)
            sources4.values = Int32(pool32.count)
            pool32.append(contentsOf: offsets4)
            sources6 = Builder.storeTree(sweep6.starts, in: &pool128)
            sources6.values = Int32(pool32.count)
            pool32.append(contentsOf: offsets6)
        }
    }
}

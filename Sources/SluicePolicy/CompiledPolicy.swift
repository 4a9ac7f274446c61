// The flat, immutable tables a dataplane worker judges packets with, and the lookup over them.
//
//   source address ──binary search──► list of source groups containing it (evaluation order)
//   per group:  dst ─┐ (interval search)   proto ─┐ (table)   sport, dport ─┐ (interval search)
//               icmp type, code ─┐ (table)  each gives a bit set over the group's rules
//   AND of the six bit sets ──► lowest set bit = first rule (in priority order) that matches
//
// Identical bit sets are stored once, so memory follows the number of distinct rule
// combinations, not intervals x rules. All tables live in a few raw buffers allocated once;
// a lookup reads them through pointers: no allocation, no reference counting, no locks.
// `PolicyCompiler.swift` builds them; `ReferenceEvaluator` is the oracle they are tested against.

/// One interval map: `count` ascending starts at `start` in a key pool, and as many values
/// (bit set offsets) at `values` in the `UInt32` pool.
struct IntervalRef {
    var start: Int32 = 0
    var count: Int32 = 0
    var values: Int32 = 0
}

/// A source group's tables, by offsets into the pools.
struct GroupRecord {
    var ruleBase: Int32 = 0
    var wordCount: Int32 = 0
    var dst4 = IntervalRef()
    var dst6 = IntervalRef()
    var srcPorts = IntervalRef()
    var dstPorts = IntervalRef()
    /// 256 bit set offsets, by protocol number.
    var protoTable: Int32 = 0
    /// 257 bit set offsets, by ICMP type or code; index 256 is "not ICMP".
    var icmpTypeTable: Int32 = 0
    var icmpCodeTable: Int32 = 0
    /// 0 none, else `ActionCode`.
    var defaultAction: UInt8 = 0
    var audit: Bool = false
    var documentIndex: Int32 = 0
}

/// A rule as the lookup needs it.
struct RuleRecord {
    var action: UInt8 = 0
    var audit: Bool = false
    var needsTLS: Bool = false
    var needsLearned: Bool = false
    var documentGroup: Int32 = 0
    var documentRule: Int32 = 0
}

enum ActionCode {
    static let allow: UInt8 = 1
    static let deny: UInt8 = 2

    @inline(__always)
    static func action(_ code: UInt8) -> PolicyAction { code == allow ? .allow : .deny }
}

/// Port keys: 0...65535 are ports, 65536 stands for "this protocol has no ports".
let portlessKey: UInt32 = 65536
/// ICMP keys: 0...255 are types or codes, 256 stands for "not ICMP".
let notICMPKey = 256

/// A compiled policy: immutable after construction, safe to read from any thread.
/// Workers read it through one atomic pointer; the control plane frees it only after every
/// worker has moved to a newer one (see `SluiceDataplane`).
public final class CompiledPolicy: @unchecked Sendable {
    /// The policy mode the tables were compiled for.
    public let mode: PolicyMode
    /// Group and rule ids by document index, for reports; never read on the hot path.
    public let groupIDs: [String]
    public let ruleIDs: [[String]]

    let defaultPolicy: UInt8
    let pool32: UnsafeMutableBufferPointer<UInt32>
    let pool128: UnsafeMutableBufferPointer<UInt128>
    let bits: UnsafeMutableBufferPointer<UInt64>
    let groups: UnsafeMutableBufferPointer<GroupRecord>
    let rules: UnsafeMutableBufferPointer<RuleRecord>
    let sources4: IntervalRef
    let sources6: IntervalRef

    init(mode: PolicyMode, defaultPolicy: PolicyAction, groupIDs: [String], ruleIDs: [[String]],
         pool32: [UInt32], pool128: [UInt128], bits: [UInt64], groups: [GroupRecord], rules: [RuleRecord],
         sources4: IntervalRef, sources6: IntervalRef) {
        func freeze<T>(_ array: [T]) -> UnsafeMutableBufferPointer<T> {
            let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: max(array.count, 1))
            _ = buffer.initialize(from: array)
            return buffer
        }
        self.mode = mode
        self.defaultPolicy = defaultPolicy == .allow ? ActionCode.allow : ActionCode.deny
        self.groupIDs = groupIDs
        self.ruleIDs = ruleIDs
        self.pool32 = freeze(pool32)
        self.pool128 = freeze(pool128)
        self.bits = freeze(bits)
        self.groups = freeze(groups)
        self.rules = freeze(rules)
        self.sources4 = sources4
        self.sources6 = sources6
    }

    deinit {
        pool32.deallocate()
        pool128.deallocate()
        bits.deallocate()
        groups.deallocate()
        rules.deallocate()
    }

    /// Bytes held by the tables.
    public var tableBytes: Int {
        pool32.count * 4 + pool128.count * 16 + bits.count * 8 + groups.count * MemoryLayout<GroupRecord>.stride
            + rules.count * MemoryLayout<RuleRecord>.stride
    }

    /// Number of source groups compiled.
    public var groupCount: Int { groupIDs.count }

    // MARK: - Lookup

    /// Index of the interval containing `key`: the last start that is <= key.
    @inline(__always)
    static func search<Key: FixedWidthInteger>(_ pool: UnsafeMutableBufferPointer<Key>, _ ref: IntervalRef, _ key: Key)
        -> Int
    {
        var low = Int(ref.start)
        var count = Int(ref.count)
        while count > 1 {
            let half = count >> 1
            if pool[low + half] <= key { low += half }
            count -= half
        }
        return low - Int(ref.start)
    }

    @inline(__always)
    func intervalValue32(_ ref: IntervalRef, _ key: UInt32) -> Int {
        Int(pool32[Int(ref.values) + CompiledPolicy.search(pool32, ref, key)])
    }

    /// Judges a packet. Allocates nothing; `learned` is consulted only for hostname rules.
    @inline(__always)
    public func lookup<Learned: LearnedAddressLookup>(_ packet: PacketQuery, learned: Learned) -> CompiledVerdict {
        if mode == .disabled { return CompiledVerdict.disabled }
        var findings = FindingList()
        let listOffset: Int
        switch packet.src {
        case .v4(let address):
            listOffset = intervalValue32(sources4, address)
        case .v6(let address):
            listOffset = Int(pool32[Int(sources6.values) + CompiledPolicy.search(pool128, sources6, address)])
        }
        let sportKey = packet.hasPorts ? UInt32(packet.srcPort) : portlessKey
        let dportKey = packet.hasPorts ? UInt32(packet.dstPort) : portlessKey
        let typeKey = packet.isICMP ? Int(packet.icmpType) : notICMPKey
        let codeKey = packet.isICMP ? Int(packet.icmpCode) : notICMPKey
        let groupCount = Int(pool32[listOffset])
        var listIndex = 0
        while listIndex < groupCount {
            let groupIndex = Int(pool32[listOffset + 1 + listIndex])
            listIndex += 1
            let group = groups[groupIndex]
            let dstSet: Int
            switch packet.dst {
            case .v4(let address):
                dstSet = intervalValue32(group.dst4, address)
            case .v6(let address):
                dstSet = Int(pool32[Int(group.dst6.values) + CompiledPolicy.search(pool128, group.dst6, address)])
            }
            let protoSet = Int(pool32[Int(group.protoTable) + Int(packet.proto)])
            let sportSet = intervalValue32(group.srcPorts, sportKey)
            let dportSet = intervalValue32(group.dstPorts, dportKey)
            let typeSet = Int(pool32[Int(group.icmpTypeTable) + typeKey])
            let codeSet = Int(pool32[Int(group.icmpCodeTable) + codeKey])
            for word in 0..<Int(group.wordCount) {
                var matches = bits[dstSet + word] & bits[protoSet + word] & bits[sportSet + word]
                    & bits[dportSet + word] & bits[typeSet + word] & bits[codeSet + word]
                while matches != 0 {
                    let ruleIndex = Int(group.ruleBase) + word << 6 + matches.trailingZeroBitCount
                    matches &= matches - 1
                    let rule = rules[ruleIndex]
                    if rule.needsLearned,
                       !learned.contains(group: Int(rule.documentGroup), rule: Int(rule.documentRule), address: packet.dst) {
                        continue
                    }
                    if rule.needsTLS {
                        if rule.audit { continue }
                        return CompiledVerdict(verdict: .allow, decision: .allow, decidedBy: .tlsPending,
                                               mode: effectiveMode(group), group: group.documentIndex,
                                               rule: rule.documentRule, findings: findings)
                    }
                    if rule.audit {
                        if rule.action == ActionCode.deny {
                            findings.append(group: group.documentIndex, rule: rule.documentRule, enforced: false)
                        }
                        continue
                    }
                    return finish(rule.action, .rule, group, rule.documentRule, findings)
                }
            }
            if group.defaultAction != 0 {
                return finish(group.defaultAction, .groupDefault, group, -1, findings)
            }
        }
        var verdict = finish(defaultPolicy, .defaultPolicy, nil, -1, findings)
        verdict.group = -1
        return verdict
    }

    /// Judges a packet when no hostname rule has learned addresses.
    public func lookup(_ packet: PacketQuery) -> CompiledVerdict {
        lookup(packet, learned: NoLearnedAddresses())
    }

    @inline(__always)
    func effectiveMode(_ group: GroupRecord?) -> EvaluationMode {
        mode == .audit || group?.audit == true ? .audit : .enforce
    }

    @inline(__always)
    func finish(_ code: UInt8, _ decidedBy: DecidedBy, _ group: GroupRecord?, _ rule: Int32, _ findings: FindingList)
        -> CompiledVerdict
    {
        let mode = effectiveMode(group)
        let decision = ActionCode.action(code)
        var findings = findings
        var verdict = decision
        if decision == .deny {
            findings.append(group: group?.documentIndex ?? -1, rule: rule, enforced: mode == .enforce)
            if mode != .enforce { verdict = .allow }
        }
        return CompiledVerdict(verdict: verdict, decision: decision, decidedBy: decidedBy, mode: mode,
                               group: group?.documentIndex ?? -1, rule: rule, findings: findings)
    }

    /// The verdict with group and rule ids, as the reference evaluator reports it.
    public func report(_ verdict: CompiledVerdict) -> Verdict {
        Verdict(verdict: verdict.verdict, decision: verdict.decision, decidedBy: verdict.decidedBy,
                sourceGroup: groupID(verdict.group), rule: ruleID(verdict.group, verdict.rule), mode: verdict.mode,
                findings: verdict.findings.map {
                    Finding(sourceGroup: groupID($0.group), rule: ruleID($0.group, $0.rule), enforced: $0.enforced)
                })
    }

    func groupID(_ index: Int32) -> String? { index >= 0 ? groupIDs[Int(index)] : nil }

    func ruleID(_ group: Int32, _ rule: Int32) -> String? {
        group >= 0 && rule >= 0 ? ruleIDs[Int(group)][Int(rule)] : nil
    }
}

/// A verdict with document indices instead of ids: a plain value the hot path can return.
public struct CompiledVerdict: Sendable, Equatable {
    public var verdict: PolicyAction
    public var decision: PolicyAction
    public var decidedBy: DecidedBy
    public var mode: EvaluationMode
    /// Document index of the deciding source group, -1 for none.
    public var group: Int32
    /// Document index of the deciding rule within its group, -1 for none.
    public var rule: Int32
    public var findings: FindingList

    /// A verdict from its parts (the dataplane's placeholders and tests build these).
    public init(verdict: PolicyAction, decision: PolicyAction, decidedBy: DecidedBy, mode: EvaluationMode,
                group: Int32, rule: Int32, findings: FindingList) {
        self.verdict = verdict
        self.decision = decision
        self.decidedBy = decidedBy
        self.mode = mode
        self.group = group
        self.rule = rule
        self.findings = findings
    }

    static let disabled = CompiledVerdict(verdict: .deny, decision: .deny, decidedBy: .disabled, mode: .disabled,
                                          group: -1, rule: -1, findings: FindingList())
}

/// Up to four findings held inline, so a verdict never allocates; `dropped` counts the rest
/// (only a policy with more than three matching audit rules on one path gets there).
public struct FindingList: Sendable, Equatable {
    /// One finding by document indices (-1 for none).
    public struct Entry: Sendable, Equatable {
        public var group: Int32
        public var rule: Int32
        public var enforced: Bool
    }

    public static let capacity = 4
    private var storage: (Entry, Entry, Entry, Entry) = (.none, .none, .none, .none)
    /// Findings held.
    public private(set) var count = 0
    /// Findings that did not fit.
    public private(set) var dropped = 0

    public init() {}

    mutating func append(group: Int32, rule: Int32, enforced: Bool) {
        let entry = Entry(group: group, rule: rule, enforced: enforced)
        switch count {
        case 0: storage.0 = entry
        case 1: storage.1 = entry
        case 2: storage.2 = entry
        case 3: storage.3 = entry
        default:
            dropped += 1
            return
        }
        count += 1
    }

    public subscript(index: Int) -> Entry {
        precondition(index >= 0 && index < count, "finding index out of range")
        switch index {
        case 0: return storage.0
        case 1: return storage.1
        case 2: return storage.2
        default: return storage.3
        }
    }

    /// Maps the findings held (allocates; for reports, not the hot path).
    public func map<T>(_ transform: (Entry) -> T) -> [T] { (0..<count).map { transform(self[$0]) } }

    public static func == (lhs: FindingList, rhs: FindingList) -> Bool {
        lhs.count == rhs.count && lhs.dropped == rhs.dropped && (0..<lhs.count).allSatisfy { lhs[$0] == rhs[$0] }
    }
}

extension FindingList.Entry {
    static let none = FindingList.Entry(group: -1, rule: -1, enforced: false)
}

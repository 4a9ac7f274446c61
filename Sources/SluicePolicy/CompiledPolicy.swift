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

/// One interval map: `count` ascending interval starts in a key pool, and as many values (bit
/// set offsets) at `values` in the `UInt32` pool.
///
/// The starts are laid out as a static search tree of cache lines (a "CSS-tree"): the leaf
/// level holds every start, each level above holds every `fanout`-th start of the level below,
/// and every level is padded to whole cache lines and aligned on them. A search reads one line
/// per level instead of one per halving step of a plain binary search: at 100,000 rules that is
/// 3 lines instead of 12 for the source map, and the difference is cache misses, not instructions.
struct IntervalRef {
    /// Offset of the leaf level (all starts), cache-line aligned.
    var start: Int32 = 0
    var count: Int32 = 0
    var values: Int32 = 0
    /// Offset of the top level; the levels follow top-down, each padded to a cache line.
    var upper: Int32 = 0
    /// Number of levels above the leaves.
    var levels: Int32 = 0
}

/// A key of an interval map: 32-bit (IPv4, ports) or 128-bit (IPv6), the two sizes the cache-line
/// layout (`fanoutShift`) is made for.
protocol SearchKey: FixedWidthInteger & UnsignedInteger {}

extension UInt32: SearchKey {}
extension UInt128: SearchKey {}

/// Keys per cache line for a key type: 16 for `UInt32`, 4 for `UInt128`.
@inline(__always)
func fanoutShift<Key>(_: Key.Type) -> Int { MemoryLayout<Key>.stride == 4 ? 4 : 2 }

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
    /// Offset of the all-zero bit set of this group's width: a dimension that yields it rules out
    /// every rule, so the remaining lookups are skipped.
    var emptySet: Int32 = 0
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
    /// The `tls` block of each rule, by index in `rules` (nil for rules without one). Read only
    /// when a TLS handshake is judged (`lookup(_:learned:tls:verifier:findings:)`), never per packet.
    let tlsBlocks: [TlsMatchConfig?]

    init(mode: PolicyMode, defaultPolicy: PolicyAction, groupIDs: [String], ruleIDs: [[String]],
         pool32: [UInt32], pool128: [UInt128], bits: [UInt64], groups: [GroupRecord], rules: [RuleRecord],
         sources4: IntervalRef, sources6: IntervalRef, tlsBlocks: [TlsMatchConfig?] = []) {
        // Cache-line aligned, so the search tree's lines are the machine's lines.
        func freeze<T>(_ array: [T]) -> UnsafeMutableBufferPointer<T> {
            let capacity = max(array.count, 1)
            let raw = UnsafeMutableRawPointer.allocate(byteCount: capacity * MemoryLayout<T>.stride,
                                                       alignment: max(64, MemoryLayout<T>.alignment))
            let buffer = UnsafeMutableBufferPointer(start: raw.bindMemory(to: T.self, capacity: capacity), count: capacity)
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
        self.tlsBlocks = tlsBlocks
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

    /// Index of the interval containing `key`: the last start that is <= key (the first start is
    /// always the smallest key, so there is one). Walks the levels of the search tree top-down,
    /// each step a binary search inside one cache line.
    @inline(__always)
    static func search<Key: SearchKey>(_ pool: UnsafeMutableBufferPointer<Key>, _ ref: IntervalRef, _ key: Key)
        -> Int
    {
        // Wrapping arithmetic: the offsets were bounded when the tables were built, and overflow
        // checks here would be half the instructions.
        let shift = fanoutShift(Key.self)
        let fanout = 1 &<< shift
        let count = Int(ref.count)
        var index = 0
        var levelOffset = Int(ref.upper)
        var level = Int(ref.levels)
        while level > 0 {
            let levelShift = shift &* level
            let levelSize = (count &+ (1 &<< levelShift) &- 1) &>> levelShift
            let first = index &<< shift
            index = lastAtMost(pool, levelOffset, first, min(fanout, levelSize &- first), key)
            levelOffset &+= (levelSize &+ fanout &- 1) & ~(fanout &- 1)
            level &-= 1
        }
        let first = index &<< shift
        return lastAtMost(pool, Int(ref.start), first, min(fanout, count &- first), key)
    }

    /// Position (from `base`) of the last of `length` keys at `base + first` that is <= key;
    /// the first of them always is. `first` starts a cache line, and every level of the tree is
    /// padded to whole lines with `Key.max`, so the whole line can be read: counting the keys
    /// <= key over the line is branch-free and vectorizes, where a binary search inside the line
    /// mispredicts a branch per step (which half holds the key is as good as random) and a
    /// mispredicted branch costs more than the whole count. (Branch-free binary search does not
    /// survive the optimizer: it turns the select back into a branch.)
    @inline(__always)
    static func lastAtMost<Key: SearchKey>(_ pool: UnsafeMutableBufferPointer<Key>, _ base: Int, _ first: Int,
                                           _ length: Int, _ key: Key) -> Int {
        let line = UnsafePointer(pool.baseAddress!.advanced(by: base &+ first))
        var atMost = 0
        for index in 0..<(1 &<< fanoutShift(Key.self)) {
            atMost &+= Int(unsafeBitCast(line[index] <= key, to: UInt8.self))
        }
        // Padding equals Key.max and counts only when key is Key.max itself.
        return first &+ min(atMost, length) &- 1
    }

    @inline(__always)
    func intervalValue32(_ ref: IntervalRef, _ key: UInt32) -> Int {
        Int(pool32[Int(ref.values) + CompiledPolicy.search(pool32, ref, key)])
    }

    /// Judges a packet. Allocates nothing; `learned` is consulted only for hostname rules.
    /// The verdict counts its findings; `lookup(_:learned:findings:)` lists them, for the rare
    /// packet (a deny, an audit) whose findings are recorded.
    @inline(__always)
    public func lookup<Learned: LearnedAddressLookup>(_ packet: PacketQuery, learned: Learned) -> CompiledVerdict {
        var count = FindingCount()
        return walk(packet, learned, &count, NoHandshake())
    }

    /// Judges a packet and collects its findings (up to `FindingList.capacity`, the rest counted).
    public func lookup<Learned: LearnedAddressLookup>(_ packet: PacketQuery, learned: Learned,
                                                      findings: inout FindingList) -> CompiledVerdict {
        walk(packet, learned, &findings, NoHandshake())
    }

    /// Judges the first packet of a TCP flow again with what its TLS handshake showed: rules with
    /// a `tls` block now match or not (`TlsMatchConfig.decide`), as the reference evaluator does
    /// with an observation. The verdict is `tls_pending` again only while `tls.awaitingCertificate`
    /// and a rule still needs the certificate. Allocates (patterns, chain verification): the
    /// dataplane calls it on its cold path, once per handshake.
    public func lookup<Learned: LearnedAddressLookup>(
        _ packet: PacketQuery, learned: Learned, tls: TLSObservation, verifier: some TLSChainVerifying,
        findings: inout FindingList
    ) -> CompiledVerdict {
        walk(packet, learned, &findings, SeenHandshake(blocks: tlsBlocks, observation: tls, verifier: verifier))
    }

    /// Judges a packet when no hostname rule has learned addresses.
    public func lookup(_ packet: PacketQuery) -> CompiledVerdict {
        lookup(packet, learned: NoLearnedAddresses())
    }

    /// The verdict with group and rule ids and the findings, as the reference evaluator reports it.
    public func report(_ packet: PacketQuery, learned: some LearnedAddressLookup = NoLearnedAddresses()) -> Verdict {
        var findings = FindingList()
        let verdict = lookup(packet, learned: learned, findings: &findings)
        return Verdict(verdict: verdict.verdict, decision: verdict.decision, decidedBy: verdict.decidedBy,
                       sourceGroup: groupID(verdict.group), rule: ruleID(verdict.group, verdict.rule), mode: verdict.mode,
                       findings: findings.map {
                           Finding(sourceGroup: groupID($0.group), rule: ruleID($0.group, $0.rule), enforced: $0.enforced)
                       })
    }

    @inline(__always)
    func walk<Learned: LearnedAddressLookup, Sink: FindingSink, Handshake: HandshakeJudge>(
        _ packet: PacketQuery, _ learned: Learned, _ findings: inout Sink, _ handshake: Handshake
    ) -> CompiledVerdict {
        if mode == .disabled { return CompiledVerdict.disabled }
        let listOffset: Int
        switch packet.src {
        case .v4(let address):
            listOffset = intervalValue32(sources4, address)
        case .v6(let address):
            listOffset = Int(pool32[Int(sources6.values) + CompiledPolicy.search(pool128, sources6, address)])
        }
        let keys = DimensionKeys(packet)
        let groupCount = Int(pool32[listOffset])
        var listIndex = 0
        while listIndex < groupCount {
            let group = UnsafePointer(groups.baseAddress! + Int(pool32[listOffset + 1 + listIndex]))
            listIndex += 1
            if let match = firstMatch(group, packet, keys, learned, &findings, handshake) {
                return match
            }
            if group.pointee.defaultAction != 0 {
                return finish(group.pointee.defaultAction, .groupDefault, group, -1, &findings)
            }
        }
        return finish(defaultPolicy, .defaultPolicy, nil, -1, &findings)
    }

    /// The keys of the L4 dimensions: the sentinels stand for "no ports" and "not ICMP".
    struct DimensionKeys {
        let srcPort: UInt32
        let dstPort: UInt32
        let icmpType: Int
        let icmpCode: Int

        @inline(__always)
        init(_ packet: PacketQuery) {
            let hasPorts = packet.hasPorts, isICMP = packet.isICMP
            srcPort = hasPorts ? UInt32(packet.srcPort) : portlessKey
            dstPort = hasPorts ? UInt32(packet.dstPort) : portlessKey
            icmpType = isICMP ? Int(packet.icmpType) : notICMPKey
            icmpCode = isICMP ? Int(packet.icmpCode) : notICMPKey
        }
    }

    /// Walks one group's rules that match the packet, in priority order: returns the verdict of
    /// the first enforce-mode rule, recording audit-mode denies on the way; nil when none decides.
    /// Dimensions are looked up most selective first, and a dimension that matches no rule ends
    /// the group at once: most groups a source belongs to have nothing for a given destination.
    /// Fields are read through the pointer: copying the record per group costs more than it saves.
    @inline(__always)
    func firstMatch<Learned: LearnedAddressLookup, Sink: FindingSink, Handshake: HandshakeJudge>(
        _ group: UnsafePointer<GroupRecord>, _ packet: PacketQuery, _ keys: DimensionKeys, _ learned: Learned,
        _ findings: inout Sink, _ handshake: Handshake
    ) -> CompiledVerdict? {
        let empty = Int(group.pointee.emptySet)
        let dstSet: Int
        switch packet.dst {
        case .v4(let address):
            dstSet = intervalValue32(group.pointee.dst4, address)
        case .v6(let address):
            let dst6 = group.pointee.dst6
            dstSet = Int(pool32[Int(dst6.values) + CompiledPolicy.search(pool128, dst6, address)])
        }
        if dstSet == empty { return nil }
        let dportSet = intervalValue32(group.pointee.dstPorts, keys.dstPort)
        if dportSet == empty { return nil }
        let protoSet = Int(pool32[Int(group.pointee.protoTable) + Int(packet.proto)])
        if protoSet == empty { return nil }
        let sportSet = intervalValue32(group.pointee.srcPorts, keys.srcPort)
        let typeSet = Int(pool32[Int(group.pointee.icmpTypeTable) + keys.icmpType])
        let codeSet = Int(pool32[Int(group.pointee.icmpCodeTable) + keys.icmpCode])
        let ruleBase = Int(group.pointee.ruleBase)
        for word in 0..<Int(group.pointee.wordCount) {
            var matches = bits[dstSet + word] & bits[protoSet + word] & bits[sportSet + word]
                & bits[dportSet + word] & bits[typeSet + word] & bits[codeSet + word]
            while matches != 0 {
                let ruleIndex = ruleBase + word << 6 + matches.trailingZeroBitCount
                let rule = rules[ruleIndex]
                matches &= matches - 1
                if rule.needsLearned,
                   !learned.contains(group: Int(rule.documentGroup), rule: Int(rule.documentRule), address: packet.dst) {
                    continue
                }
                if rule.needsTLS {
                    switch handshake.decide(ruleIndex) {
                    case .match?:
                        break
                    case .noMatch?:
                        continue
                    case .needsCertificate?, nil:
                        // Undecidable until the handshake (or its server flight) is seen: an audit
                        // rule records nothing yet.
                        if rule.audit { continue }
                        return CompiledVerdict(verdict: .allow, decision: .allow, decidedBy: .tlsPending,
                                               mode: effectiveMode(group), group: rule.documentGroup,
                                               rule: rule.documentRule, findingCount: findings.count)
                    }
                }
                if rule.audit {
                    if rule.action == ActionCode.deny {
                        findings.append(group: rule.documentGroup, rule: rule.documentRule, enforced: false)
                    }
                    continue
                }
                return finish(rule.action, .rule, group, rule.documentRule, &findings)
            }
        }
        return nil
    }

    @inline(__always)
    func effectiveMode(_ group: UnsafePointer<GroupRecord>?) -> EvaluationMode {
        mode == .audit || group?.pointee.audit == true ? .audit : .enforce
    }

    /// Applies the audit modes to a decision and records the final deny.
    @inline(__always)
    func finish<Sink: FindingSink>(_ code: UInt8, _ decidedBy: DecidedBy, _ group: UnsafePointer<GroupRecord>?,
                                   _ rule: Int32, _ findings: inout Sink) -> CompiledVerdict {
        let mode = effectiveMode(group)
        let decision = ActionCode.action(code)
        let groupIndex = group?.pointee.documentIndex ?? -1
        var verdict = decision
        if decision == .deny {
            findings.append(group: groupIndex, rule: rule, enforced: mode == .enforce)
            if mode != .enforce { verdict = .allow }
        }
        return CompiledVerdict(verdict: verdict, decision: decision, decidedBy: decidedBy, mode: mode,
                               group: groupIndex, rule: rule, findingCount: findings.count)
    }

    func groupID(_ index: Int32) -> String? { index >= 0 ? groupIDs[Int(index)] : nil }

    func ruleID(_ group: Int32, _ rule: Int32) -> String? {
        group >= 0 && rule >= 0 ? ruleIDs[Int(group)][Int(rule)] : nil
    }
}

/// Verifies a server's certificate chain against a rule's PEM trust anchors (the dataplane's
/// X.509 code; tests use fixed answers).
public protocol TLSChainVerifying {
    /// Whether the chain seen verifies against `anchorsPEM`.
    func verify(anchorsPEM: [String]) -> Bool
}

/// What a lookup knows about the flow's TLS handshake, per rule with a `tls` block.
protocol HandshakeJudge {
    /// The block's answer for rule `ruleIndex` (index in `rules`); nil when no handshake was seen.
    func decide(_ ruleIndex: Int) -> TLSMatchResult?
}

/// The per-packet case: no handshake, so a `tls` rule leaves the flow pending. Compiles away.
struct NoHandshake: HandshakeJudge {
    @inline(__always)
    func decide(_ ruleIndex: Int) -> TLSMatchResult? { nil }
}

/// A handshake was seen: each `tls` block decides on the observation.
struct SeenHandshake<Verifier: TLSChainVerifying>: HandshakeJudge {
    let blocks: [TlsMatchConfig?]
    let observation: TLSObservation
    let verifier: Verifier

    func decide(_ ruleIndex: Int) -> TLSMatchResult? {
        guard ruleIndex < blocks.count, let block = blocks[ruleIndex] else { return .noMatch }
        return block.decide(observation) { verifier.verify(anchorsPEM: $0) }
    }
}

/// A verdict with document indices instead of ids: 16 bytes the hot path can return.
public struct CompiledVerdict: Sendable, Equatable {
    public var verdict: PolicyAction
    public var decision: PolicyAction
    public var decidedBy: DecidedBy
    public var mode: EvaluationMode
    /// Document index of the deciding source group, -1 for none.
    public var group: Int32
    /// Document index of the deciding rule within its group, -1 for none.
    public var rule: Int32
    /// How many findings the decision produced (list them with `lookup(_:learned:findings:)`).
    public var findingCount: Int

    /// A verdict from its parts (the dataplane's placeholders and tests build these).
    public init(verdict: PolicyAction, decision: PolicyAction, decidedBy: DecidedBy, mode: EvaluationMode,
                group: Int32, rule: Int32, findingCount: Int) {
        self.verdict = verdict
        self.decision = decision
        self.decidedBy = decidedBy
        self.mode = mode
        self.group = group
        self.rule = rule
        self.findingCount = findingCount
    }

    static let disabled = CompiledVerdict(verdict: .deny, decision: .deny, decidedBy: .disabled, mode: .disabled,
                                          group: -1, rule: -1, findingCount: 0)
}

/// Where a lookup puts the findings it meets.
public protocol FindingSink {
    /// Findings met so far.
    var count: Int { get }
    mutating func append(group: Int32, rule: Int32, enforced: Bool)
}

/// Counts findings without keeping them: the hot path's sink.
struct FindingCount: FindingSink {
    var count = 0

    @inline(__always)
    mutating func append(group: Int32, rule: Int32, enforced: Bool) { count += 1 }
}

/// Up to four findings held inline, so a verdict never allocates; `dropped` counts the rest
/// (only a policy with more than three matching audit rules on one path gets there).
public struct FindingList: FindingSink, Sendable, Equatable {
    /// One finding by document indices (-1 for none).
    public struct Entry: Sendable, Equatable {
        public var group: Int32
        public var rule: Int32
        public var enforced: Bool
    }

    public static let capacity = 4
    private var storage: (Entry, Entry, Entry, Entry) = (.none, .none, .none, .none)
    /// Findings met, held or not.
    public var count: Int { held + dropped }
    /// Findings held.
    public private(set) var held = 0
    /// Findings that did not fit.
    public private(set) var dropped = 0

    public init() {}

    public mutating func append(group: Int32, rule: Int32, enforced: Bool) {
        let entry = Entry(group: group, rule: rule, enforced: enforced)
        switch held {
        case 0: storage.0 = entry
        case 1: storage.1 = entry
        case 2: storage.2 = entry
        case 3: storage.3 = entry
        default:
            dropped += 1
            return
        }
        held += 1
    }

    public subscript(index: Int) -> Entry {
        precondition(index >= 0 && index < held, "finding index out of range")
        switch index {
        case 0: return storage.0
        case 1: return storage.1
        case 2: return storage.2
        default: return storage.3
        }
    }

    /// Maps the findings held (allocates; for reports, not the hot path).
    public func map<T>(_ transform: (Entry) -> T) -> [T] { (0..<held).map { transform(self[$0]) } }

    public static func == (lhs: FindingList, rhs: FindingList) -> Bool {
        lhs.held == rhs.held && lhs.dropped == rhs.dropped && (0..<lhs.held).allSatisfy { lhs[$0] == rhs[$0] }
    }
}

extension FindingList.Entry {
    static let none = FindingList.Entry(group: -1, rule: -1, enforced: false)
}

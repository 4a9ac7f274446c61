// nft-rules: the rule sets of the benchmark harness (bench/run.sh). From SluicePolicyGen's
// ClassBench-like generator (fixed seed) it writes, for one rule count:
//   policy.json  the Sluice policy (envelope, enforce): the generated groups, then the `bench` group
//                that allows the generator's traffic (198.18.0.0/16, fd00:18::/64) — placed last, so
//                every generated group and rule is walked before it decides;
//   naive.nft    the same policy as one nftables rule per (rule, address family, protocol variant)
//                in evaluation order: what a hand translation gives;
//   best.nft     the best encoding nftables offers: a verdict map from source address intervals
//                to a dispatch chain per distinct list of containing groups, one chain per group,
//                and runs of consecutive same-verdict TCP/UDP/SCTP rules merged into one lookup in
//                a concatenated interval set (meta l4proto . daddr . th dport).
// Lists (`{ a, b }`) are written as named sets shared by identical lists (NamedSets: anonymous sets
// make the kernel's load quadratic in their number).
// Both begin with `ct state established,related accept` (the usual stateful forward chain; Sluice
// is stateful too) and are exact translations of the first-match walk of docs/policy.md for
// IPv4/IPv6 L3/L4 rules, checked against the reference evaluator on generated packets twice: the
// intermediate rule list, and each written file read back (ReadBack.swift);
// rules the kernel cannot express (TLS, dns_hostname) would be left out and are counted — the
// ClassBench profile has none.
//   nft-rules --rules N [--seed S] --out DIR
import Foundation
import SluicePolicy
import SluicePolicyGen

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("nft-rules: \(message)\n".utf8))
    exit(2)
}

let arguments = CommandLine.arguments
func value(_ name: String) -> String? {
    arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
}
guard let ruleCount = value("--rules").flatMap(Int.init), ruleCount >= 100, let outDir = value("--out") else {
    fail("usage: nft-rules --rules N (>= 100) [--seed S] --out DIR")
}
let seed = value("--seed").flatMap { UInt64($0) } ?? 42

// MARK: - The policy

var generator = PolicyGenerator(seed: seed, profile: .classBench)
var config = generator.policy(groups: max(1, ruleCount / 100), rulesPerGroup: min(100, ruleCount))
let benchV4 = IPPrefix(address: IPAddress("198.18.0.0")!, length: 16)!
let benchV6 = IPPrefix(address: IPAddress("fd00:18::")!, length: 64)!
config.sourceGroups.append(SourceGroupConfig(
    id: "bench", priority: nil, sources: SourcesConfig(cidrs: [benchV4, benchV6]),
    rules: [RuleConfig(id: "udp", action: .allow, match: RuleMatchConfig(proto: .udp)),
            RuleConfig(id: "tcp", action: .allow, match: RuleMatchConfig(proto: .tcp)),
            RuleConfig(id: "icmp", action: .allow, match: RuleMatchConfig(proto: .icmp)),
            RuleConfig(id: "icmpv6", action: .allow, match: RuleMatchConfig(proto: .icmpv6))],
    defaultAction: nil, mode: nil))
let request = PolicyRequest(mode: .enforce, name: "bench-\(ruleCount)", policy: config)

// MARK: - Intermediate form: ordered rules of one address family

enum Family: CaseIterable { case v4, v6 }

struct Span: Comparable {
    var low: UInt128, high: UInt128
    static func < (a: Span, b: Span) -> Bool { a.low != b.low ? a.low < b.low : a.high < b.high }
}

func span(_ prefix: IPPrefix) -> Span {
    switch prefix.address {
    case .v4(let v):
        let host: UInt128 = prefix.length == 32 ? 0 : (UInt128(1) << (32 - prefix.length)) - 1
        return Span(low: UInt128(v), high: UInt128(v) | host)
    case .v6(let v):
        let host: UInt128 = prefix.length == 128 ? 0 : (UInt128(1) << (128 - prefix.length)) - 1
        return Span(low: v, high: v | host)
    }
}

func family(_ address: IPAddress) -> Family { address.isV4 ? .v4 : .v6 }

/// One nftables rule before it is written out. nil = no constraint.
struct NRule {
    var sources: [Span]
    var destinations: [Span]?
    var protocols: [UInt8]?
    var sourcePorts: [PortRange]?
    var destinationPorts: [PortRange]?
    var icmpTypes: [UInt8]?
    var icmpCodes: [UInt8]?
    var accept: Bool
    /// Mergeable into a `meta l4proto . daddr . th dport` interval set.
    var mergeable: Bool {
        guard let protocols, sourcePorts == nil, icmpTypes == nil, icmpCodes == nil else { return false }
        return protocols.allSatisfy { $0 == 6 || $0 == 17 || $0 == 132 }
    }

    func matches(_ p: PacketQuery, source: UInt128, destination: UInt128) -> Bool {
        guard sources.contains(where: { $0.low <= source && source <= $0.high }) else { return false }
        if let destinations, !destinations.contains(where: { $0.low <= destination && destination <= $0.high }) {
            return false
        }
        if let protocols, !protocols.contains(p.proto) { return false }
        if let sourcePorts, !sourcePorts.contains(where: { $0.contains(p.srcPort) }) { return false }
        if let destinationPorts, !destinationPorts.contains(where: { $0.contains(p.dstPort) }) { return false }
        if let icmpTypes, !icmpTypes.contains(p.icmpType) { return false }
        if let icmpCodes, !icmpCodes.contains(p.icmpCode) { return false }
        return true
    }
}

struct GroupRules { var index: Int; var sources: [Span]; var rules: [NRule] }

var leftOut = 0
/// Per family, the groups in evaluation order with their translated rules (the group default last).
@MainActor func translate(_ f: Family) -> [GroupRules] {
    var result: [GroupRules] = []
    for g in PolicyOrder.sorted(config.sourceGroups.map(\.priority)) {
        let group = config.sourceGroups[g]
        let sources = (group.sources.cidrs + group.sources.ips.map { IPPrefix(host: $0) })
            .filter { family($0.address) == f }.map(span)
        guard !sources.isEmpty else { continue }
        var rules: [NRule] = []
        for r in PolicyOrder.sorted(group.rules.map(\.priority)) {
            let rule = group.rules[r]
            let m = rule.match
            if rule.mode == .audit { continue }  // left out of the enforce path (docs/policy.md)
            if m.tls != nil || m.dnsHostname != nil { leftOut += 1; continue }
            let accept = rule.action == .allow || group.mode == .audit
            var out = NRule(sources: sources, accept: accept)
            if !m.dstCidrs.isEmpty || !m.dstIps.isEmpty {
                let d = (m.dstCidrs + m.dstIps.map { IPPrefix(host: $0) }).filter { family($0.address) == f }.map(span)
                if d.isEmpty { continue }  // no destination of this family: never matches here
                out.destinations = d
            }
            if case .number(let n)? = m.proto { out.protocols = [n] }
            if !m.srcPorts.isEmpty || !m.dstPorts.isEmpty {
                out.protocols = (out.protocols ?? [6, 17, 132]).filter { $0 == 6 || $0 == 17 || $0 == 132 }
                if !m.srcPorts.isEmpty { out.sourcePorts = m.srcPorts }
                if !m.dstPorts.isEmpty { out.destinationPorts = m.dstPorts }
            }
            let types = m.effectiveICMPTypes
            if !types.isEmpty || !m.icmpCodes.isEmpty {
                out.protocols = (out.protocols ?? [1, 58]).filter { $0 == 1 || $0 == 58 }
                if !types.isEmpty { out.icmpTypes = types }
                if !m.icmpCodes.isEmpty { out.icmpCodes = m.icmpCodes }
                // `icmp type` and `icmpv6 type` are different expressions: one rule per protocol.
                for p in out.protocols! {
                    var single = out
                    single.protocols = [p]
                    rules.append(single)
                }
                continue
            }
            if out.protocols?.isEmpty == true { continue }
            rules.append(out)
        }
        if let fallback = group.defaultAction {
            rules.append(NRule(sources: sources, accept: fallback == .allow || group.mode == .audit))
        }
        result.append(GroupRules(index: g, sources: sources, rules: rules))
    }
    return result
}

let translated: [Family: [GroupRules]] = [.v4: translate(.v4), .v6: translate(.v6)]
let defaultAccept = (config.defaultPolicy ?? .deny) == .allow

// MARK: - Check: the translation decides as the reference evaluator does

func value128(_ a: IPAddress) -> UInt128 {
    switch a {
    case .v4(let v): return UInt128(v)
    case .v6(let v): return v
    }
}

var checkGenerator = PolicyGenerator(seed: seed &+ 1, profile: .classBench)
var packets = checkGenerator.packets(for: config, count: 20_000)
// The generator's own traffic: bench sources to the sink, UDP, TCP, ICMP echo.
for proto: UInt8 in [6, 17, 1, 58] {
    let v6 = proto == 58
    packets.append(PacketQuery(src: v6 ? IPAddress("fd00:18::1:5")! : IPAddress("198.18.1.5")!,
                               dst: v6 ? IPAddress("fd00:19::2")! : IPAddress("198.19.0.2")!, proto: proto,
                               srcPort: 1024, dstPort: 9000, icmpType: v6 ? 128 : 8))
}
let reference = ReferenceEvaluator(request)
let expectedVerdicts = packets.map { reference.evaluate($0).verdict == .allow }
var mismatches = 0
for (p, expected) in zip(packets, expectedVerdicts) {
    let s = value128(p.src), d = value128(p.dst)
    var got = defaultAccept
    search: for group in translated[family(p.src)]! {
        for rule in group.rules where rule.matches(p, source: s, destination: d) {
            got = rule.accept
            break search
        }
    }
    if got != expected {
        mismatches += 1
        if mismatches <= 5 { FileHandle.standardError.write(Data("mismatch: \(p) reference \(expected) nft \(got)\n".utf8)) }
    }
}
if mismatches > 0 { fail("\(mismatches) of \(packets.count) packets decided differently by the translation") }

// MARK: - Writing nftables syntax

func address(_ v: UInt128, _ f: Family) -> String { f == .v4 ? IPAddress.v4(UInt32(v)).description : IPAddress.v6(v).description }

/// Merged, sorted intervals (nftables refuses overlapping elements), as prefixes where aligned.
func merged(_ spans: [Span]) -> [Span] {
    var out: [Span] = []
    for s in spans.sorted() {
        if let last = out.last, s.low <= last.high || (last.high != UInt128.max && s.low == last.high + 1) {
            out[out.count - 1].high = max(last.high, s.high)
        } else {
            out.append(s)
        }
    }
    return out
}

func text(_ s: Span, _ f: Family) -> String {
    let size = s.high - s.low
    let width = f == .v4 ? 32 : 128
    if size == 0 { return address(s.low, f) }
    if (size & (size &+ 1)) == 0, s.low & size == 0 {  // an aligned power of two: a prefix
        let hostBits = size == UInt128.max ? 128 : (size &+ 1).trailingZeroBitCount
        return "\(address(s.low, f))/\(width - hostBits)"
    }
    return "\(address(s.low, f))-\(address(s.high, f))"
}

/// The lists of one written file as named sets, one per distinct (expression, elements), declared at table
/// level. Why not anonymous sets (`ip daddr { a, b }` inline): the kernel gives each anonymous set a name
/// by scanning every set of the table (`nf_tables_set_alloc_name`, several passes past 32,768 sets), finds
/// it again by a linear name search and binds it by walking the whole transaction
/// (`__nft_set_trans_bind`), so a table with N rules holding lists loads in O(N²): 100,000 rules did
/// not load in 11 minutes (docs/benchmarks.md). Named sets skip the naming and the walk, and sharing
/// identical lists (a group's sources, common port lists) divides their number by ~5. Matching is the
/// same: a set lookup either way.
final class NamedSets {
    private var names: [String: String] = [:]
    private(set) var declarations = ""
    var count: Int { names.count }

    /// `items` as the right-hand side of `expr`: the single item itself, else a reference `@sN`.
    func value(_ expr: String, _ items: [String], interval: Bool) -> String {
        if items.count == 1 { return items[0] }
        let key = expr + "|" + items.joined(separator: ",")
        if let name = names[key] { return "@\(name)" }
        let name = "s\(names.count)"
        names[key] = name
        declarations += """
                set \(name) {
                    typeof \(expr); flags constant\(interval ? ", interval" : "")
                    elements = { \(items.joined(separator: ", ")) }
                }

            """
        return "@\(name)"
    }
}

/// Distinct values in ascending order (a set's elements; duplicates would be refused).
func numbers(_ values: [UInt8]) -> [String] { Array(Set(values)).sorted().map(String.init) }

func ports(_ ranges: [PortRange]) -> [String] {
    merged(ranges.map { Span(low: UInt128($0.lower), high: UInt128($0.upper)) })
        .map { $0.low == $0.high ? "\($0.low)" : "\($0.low)-\($0.high)" }
}

func body(_ r: NRule, _ f: Family, withSource: Bool, _ sets: NamedSets) -> String {
    let ip = f == .v4 ? "ip" : "ip6"
    var parts: [String] = []
    func add(_ expr: String, _ items: [String], interval: Bool) {
        parts.append("\(expr) \(sets.value(expr, items, interval: interval))")
    }
    if withSource { add("\(ip) saddr", merged(r.sources).map { text($0, f) }, interval: true) }
    if let d = r.destinations { add("\(ip) daddr", merged(d).map { text($0, f) }, interval: true) }
    if let p = r.protocols { add("meta l4proto", numbers(p), interval: false) }
    if let s = r.sourcePorts { add("th sport", ports(s), interval: true) }
    if let d = r.destinationPorts { add("th dport", ports(d), interval: true) }
    let icmp = r.protocols == [58] ? "icmpv6" : "icmp"
    if let t = r.icmpTypes { add("\(icmp) type", numbers(t), interval: false) }
    if let c = r.icmpCodes { add("\(icmp) code", numbers(c), interval: false) }
    parts.append(r.accept ? "accept" : "drop")
    return parts.joined(separator: " ")
}

let header = """
    # Generated by bench/nft-rules (seed \(seed), \(ruleCount) rules): do not edit.
    flush ruleset
    table inet sluice_bench {

    """
let chainHead = """
        chain forward {
            type filter hook forward priority filter; policy \(defaultAccept ? "accept" : "drop");
            ct state established,related accept

    """

var naive = chainHead
var naiveRules = 0
let naiveSets = NamedSets()
for f in Family.allCases {
    for group in translated[f]! {
        for rule in group.rules {
            naive += "        \(body(rule, f, withSource: true, naiveSets))\n"
            naiveRules += 1
        }
    }
}
naive = header + naiveSets.declarations + naive + "    }\n}\n"

// Best: elementary source intervals → dispatch chain (the containing groups in order) → group chains.
var best = header
var sets = ""  // table-level: nftables has no sets inside chains
var forward = chainHead
var setCount = 0, bestRules = 0, dispatchCount = 0
let bestSets = NamedSets()
for f in Family.allCases {
    let groups = translated[f]!
    let tag = f == .v4 ? "4" : "6"
    // Group chains.
    for group in groups {
        best += "    chain g\(tag)_\(group.index) {\n"
        var i = 0
        while i < group.rules.count {
            var j = i
            while j < group.rules.count, group.rules[j].mergeable, group.rules[j].accept == group.rules[i].accept { j += 1 }
            if j - i >= 2 {
                let ip = f == .v4 ? "ip" : "ip6"
                let wildcard = Span(low: 0, high: f == .v4 ? UInt128(UInt32.max) : UInt128.max)
                let verdict = group.rules[i].accept ? "accept" : "drop"
                // The kernel's concatenated interval sets refuse overlapping elements: a run whose next
                // element overlaps one already in the set continues in a new set (same verdict, same
                // order, so first-match semantics are kept).
                var current: [(UInt8, Span, Span)] = []
                func flush() {
                    guard !current.isEmpty else { return }
                    let name = "m\(tag)_\(group.index)_\(setCount)"
                    setCount += 1
                    let elements = current.map { e in
                        "\(e.0) . \(text(e.1, f)) . \(e.2.low == e.2.high ? "\(e.2.low)" : "\(e.2.low)-\(e.2.high)")"
                    }
                    sets += """
                            set \(name) {
                                typeof meta l4proto . \(ip) daddr . th dport; flags interval
                                elements = { \(elements.joined(separator: ",\n                ")) }
                            }

                        """
                    best += "        meta l4proto . \(ip) daddr . th dport @\(name) \(verdict)\n"
                    bestRules += 1
                    current = []
                }
                for rule in group.rules[i..<j] {
                    let dsts = merged(rule.destinations ?? [wildcard])
                    let dports = merged((rule.destinationPorts ?? [PortRange(0, 65535)!])
                        .map { Span(low: UInt128($0.lower), high: UInt128($0.upper)) })
                    for p in rule.protocols! { for d in dsts { for port in dports {
                        let overlaps = current.contains { e in
                            e.0 == p && e.1.low <= d.high && d.low <= e.1.high && e.2.low <= port.high && port.low <= e.2.high
                        }
                        if overlaps { flush() }
                        current.append((p, d, port))
                    } } }
                }
                flush()
                i = j
            } else {
                best += "        \(body(group.rules[i], f, withSource: false, bestSets))\n"
                bestRules += 1
                i += 1
            }
        }
        best += "    }\n"
    }
    // Elementary intervals of the group sources and, for each, the groups containing it.
    var points = Set<UInt128>()
    for g in groups { for s in g.sources { points.insert(s.low); if s.high != UInt128.max { points.insert(s.high + 1) } } }
    let sortedPoints = points.sorted()
    var dispatch: [[Int]: String] = [:]
    var elements: [(Span, String)] = []
    for (k, low) in sortedPoints.enumerated() {
        let high = k + 1 < sortedPoints.count ? sortedPoints[k + 1] - 1 : (f == .v4 ? UInt128(UInt32.max) : UInt128.max)
        let containing = groups.filter { g in g.sources.contains { $0.low <= low && high <= $0.high } }.map(\.index)
        guard !containing.isEmpty else { continue }
        let chain: String
        if containing.count == 1 {
            chain = "g\(tag)_\(containing[0])"
        } else if let known = dispatch[containing] {
            chain = known
        } else {
            chain = "d\(tag)_\(dispatchCount)"
            dispatchCount += 1
            dispatch[containing] = chain
            best += "    chain \(chain) {\n" + containing.map { "        jump g\(tag)_\($0)\n" }.joined() + "    }\n"
        }
        // Adjacent intervals with the same chain join (the map needs no overlaps, fewer is faster).
        if let last = elements.last, last.1 == chain, last.0.high + 1 == low {
            elements[elements.count - 1].0.high = high
        } else {
            elements.append((Span(low: low, high: high), chain))
        }
    }
    if !elements.isEmpty {
        best += """
                map src\(tag) {
                    type \(f == .v4 ? "ipv4_addr" : "ipv6_addr") : verdict; flags interval
                    elements = { \(elements.map { "\(text($0.0, f)) : jump \($0.1)" }.joined(separator: ",\n                ")) }
                }

            """
        forward += "        \(f == .v4 ? "ip" : "ip6") saddr vmap @src\(tag)\n"
    }
}
best += sets + bestSets.declarations + forward + "    }\n}\n"

// MARK: - Check: the written files, read back, decide as the reference evaluator does

for (name, file) in [("naive", naive), ("best", best)] {
    let model: NftModel
    do { model = try readBack(file) } catch { fail("\(name).nft: \(error)") }
    var wrong = 0
    for (p, expected) in zip(packets, expectedVerdicts) where model.decide(p) != expected {
        wrong += 1
        if wrong <= 5 { FileHandle.standardError.write(Data("\(name).nft mismatch: \(p) reference \(expected)\n".utf8)) }
    }
    if wrong > 0 { fail("\(wrong) of \(packets.count) packets decided differently by \(name).nft") }
}

try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
let encoder = JSONEncoder()
encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
try encoder.encode(request).write(to: URL(fileURLWithPath: "\(outDir)/policy.json"))
try naive.write(toFile: "\(outDir)/naive.nft", atomically: true, encoding: .utf8)
try best.write(toFile: "\(outDir)/best.nft", atomically: true, encoding: .utf8)
let generated = config.sourceGroups.dropLast().reduce(0) { $0 + $1.rules.count }
print("rules=\(generated) groups=\(config.sourceGroups.count - 1) naive_rules=\(naiveRules) best_rules=\(bestRules) "
      + "best_sets=\(setCount) naive_named_sets=\(naiveSets.count) best_named_sets=\(bestSets.count) dispatch_chains=\(dispatchCount) left_out=\(leftOut) checked_packets=\(packets.count)")

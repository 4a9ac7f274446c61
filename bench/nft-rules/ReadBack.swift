// ReadBack: reads back the nftables text nft-rules writes (its own restricted subset of nft's grammar,
// not nft's full language) and decides packets as the kernel's forward chain would. main.swift checks
// both written files with it against the reference evaluator, so what is checked is the text that
// `nft -f` loads — named sets, verdict maps, dispatch jumps, concatenated interval sets — not only the
// intermediate rule list. Anything outside the subset is a fatal error, never skipped.
import Foundation
import SluicePolicy

/// Inclusive interval of a field's values (addresses, ports, protocol numbers, ICMP types/codes).
struct ValueRange {
    var low: UInt128, high: UInt128
    func contains(_ v: UInt128) -> Bool { low <= v && v <= high }
}

/// One written table, read back.
struct NftModel {
    enum Field { case saddr4, daddr4, saddr6, daddr6, l4proto, sport, dport, icmpType, icmpCode, icmpv6Type, icmpv6Code }
    enum Condition {
        case match(Field, [ValueRange])
        /// `meta l4proto . ip[6] daddr . th dport @set`: elements (protocol, address range, port range).
        case concat(v6: Bool, [(UInt8, ValueRange, ValueRange)])
        /// `ct state established,related`: never true for the first packet of a flow, which is what is checked.
        case established
    }
    enum Verdict { case accept, drop, jump(Int), vmap(v6: Bool, [(ValueRange, Int)]) }
    struct Item { var conditions: [Condition]; var verdict: Verdict }

    var chains: [[Item]] = []
    var base = -1
    var policyAccept = false
    var setCount = 0

    /// The first packet of a flow: the verdict the forward chain reaches (nil = a construct the model refuses).
    func decide(_ p: PacketQuery) -> Bool {
        run(base, p) ?? policyAccept
    }

    private func run(_ chain: Int, _ p: PacketQuery) -> Bool? {
        for item in chains[chain] where item.conditions.allSatisfy({ holds($0, p) }) {
            switch item.verdict {
            case .accept: return true
            case .drop: return false
            case .jump(let target): if let v = run(target, p) { return v }
            case .vmap(let v6, let elements):
                // `ip saddr vmap`: only packets of that family; no element = the rule does nothing.
                guard p.src.isV4 != v6, let hit = elements.first(where: { $0.0.contains(value(p.src)) }) else { continue }
                if let v = run(hit.1, p) { return v }
            }
        }
        return nil  // end of a jumped-to chain: back to the caller
    }

    private func value(_ a: IPAddress) -> UInt128 {
        switch a {
        case .v4(let v): return UInt128(v)
        case .v6(let v): return v
        }
    }

    private func ports(_ p: PacketQuery) -> Bool { p.proto == 6 || p.proto == 17 || p.proto == 132 }

    private func holds(_ c: Condition, _ p: PacketQuery) -> Bool {
        switch c {
        case .established: return false
        case .concat(let v6, let elements):
            guard p.src.isV4 != v6, ports(p) else { return false }  // every element's protocol has ports (read())
            let d = value(p.dst), port = UInt128(p.dstPort)
            return elements.contains { $0.0 == p.proto && $0.1.contains(d) && $0.2.contains(port) }
        case .match(let field, let ranges):
            let v: UInt128
            switch field {
            case .saddr4, .daddr4, .saddr6, .daddr6:
                // `ip saddr` implies IPv4 (`meta nfproto ipv4`), `ip6 saddr` IPv6.
                guard p.src.isV4 == (field == .saddr4 || field == .daddr4) else { return false }
                v = value(field == .saddr4 || field == .saddr6 ? p.src : p.dst)
            case .l4proto: v = UInt128(p.proto)
            case .sport, .dport:
                // `th` reads the transport header's first bytes whatever the protocol: the writer must
                // have restricted the protocol to ones with ports before; the model refuses otherwise.
                if !ports(p) { fatalError("nft-rules read-back: th port read for protocol \(p.proto)") }
                v = UInt128(field == .sport ? p.srcPort : p.dstPort)
            case .icmpType, .icmpCode:  // implies `meta l4proto icmp`
                guard p.proto == 1 else { return false }
                v = UInt128(field == .icmpType ? p.icmpType : p.icmpCode)
            case .icmpv6Type, .icmpv6Code:  // implies `meta l4proto ipv6-icmp`
                guard p.proto == 58 else { return false }
                v = UInt128(field == .icmpv6Type ? p.icmpType : p.icmpCode)
            }
            return ranges.contains { $0.contains(v) }
        }
    }
}

enum ReadBackError: Error, CustomStringConvertible {
    case unexpected(String)
    var description: String {
        switch self { case .unexpected(let s): return "read-back: \(s)" }
    }
}

/// Parses nft-rules' own output (see NftModel).
func readBack(_ text: String) throws -> NftModel {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    func bad(_ s: String) -> ReadBackError { .unexpected(s) }

    func number(_ s: Substring) throws -> UInt128 {
        guard let v = UInt128(s) else { throw bad("not a number: \(s)") }
        return v
    }
    func address(_ s: Substring) throws -> UInt128 {
        guard let a = IPAddress(s) else { throw bad("not an address: \(s)") }
        switch a {
        case .v4(let v): return UInt128(v)
        case .v6(let v): return v
        }
    }
    func isV6(_ s: Substring) -> Bool { s.contains(":") }
    /// One element of an address or number field: `a`, `a-b`, `a/len` (addresses only).
    func range(_ s: Substring, addresses: Bool) throws -> ValueRange {
        if addresses, let slash = s.firstIndex(of: "/") {
            let low = try address(s[..<slash])
            guard let len = Int(s[s.index(after: slash)...]) else { throw bad("prefix \(s)") }
            let width = isV6(s) ? 128 : 32
            guard len >= 0, len <= width else { throw bad("prefix \(s)") }
            let host: UInt128 = len == width ? 0 : (len == 0 && width == 128 ? UInt128.max : (UInt128(1) << (width - len)) - 1)
            guard low & host == 0 else { throw bad("prefix with host bits \(s)") }
            return ValueRange(low: low, high: low | host)
        }
        let parts = s.split(separator: "-")
        guard parts.count == 1 || parts.count == 2 else { throw bad("element \(s)") }
        let low = addresses ? try address(parts[0]) : try number(parts[0])
        let high = parts.count == 2 ? (addresses ? try address(parts[1]) : try number(parts[1])) : low
        guard low <= high else { throw bad("empty range \(s)") }
        return ValueRange(low: low, high: high)
    }
    func field(_ a: Substring, _ b: Substring) throws -> NftModel.Field {
        switch (a, b) {
        case ("ip", "saddr"): return .saddr4
        case ("ip", "daddr"): return .daddr4
        case ("ip6", "saddr"): return .saddr6
        case ("ip6", "daddr"): return .daddr6
        case ("meta", "l4proto"): return .l4proto
        case ("th", "sport"): return .sport
        case ("th", "dport"): return .dport
        case ("icmp", "type"): return .icmpType
        case ("icmp", "code"): return .icmpCode
        case ("icmpv6", "type"): return .icmpv6Type
        case ("icmpv6", "code"): return .icmpv6Code
        default: throw bad("unknown field \(a) \(b)")
        }
    }
    func isAddress(_ f: NftModel.Field) -> Bool { [.saddr4, .daddr4, .saddr6, .daddr6].contains(f) }

    // Pass 1: chain names (maps refer to chains), then sets and maps with their elements.
    var chainIndex: [String: Int] = [:]
    for l in lines where l.hasPrefix("chain ") {
        let name = l.split(separator: " ")[1]
        guard chainIndex[String(name)] == nil else { throw bad("chain \(name) twice") }
        chainIndex[String(name)] = chainIndex.count
    }
    var sets: [String: [ValueRange]] = [:], setFields: [String: NftModel.Field] = [:]
    var concats: [String: (Bool, [(UInt8, ValueRange, ValueRange)])] = [:]
    var maps: [String: (Bool, [(ValueRange, Int)])] = [:]
    var i = 0
    while i < lines.count {
        let l = lines[i]
        guard l.hasPrefix("set ") || l.hasPrefix("map ") else { i += 1; continue }
        let name = String(l.split(separator: " ")[1])
        guard sets[name] == nil, concats[name] == nil, maps[name] == nil else { throw bad("set \(name) twice") }
        let spec = lines[i + 1]
        // Elements: from `elements = { ` to the line ending in ` }`.
        var j = i + 2
        guard lines[j].hasPrefix("elements = { ") else { throw bad("set \(name): no elements") }
        var body = String(lines[j].dropFirst("elements = { ".count))
        while !body.hasSuffix(" }") { j += 1; body += " " + lines[j] }
        guard lines[j + 1] == "}" else { throw bad("set \(name): not closed") }
        let elements = body.dropLast(2).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if l.hasPrefix("map ") {
            let v6: Bool
            switch spec {
            case "type ipv4_addr : verdict; flags interval": v6 = false
            case "type ipv6_addr : verdict; flags interval": v6 = true
            default: throw bad("map \(name): \(spec)")
            }
            maps[name] = (v6, try elements.map { e in
                let parts = e.split(separator: " ")
                guard parts.count == 4, parts[1] == ":", parts[2] == "jump", let c = chainIndex[String(parts[3])] else {
                    throw bad("map \(name) element \(e)")
                }
                return (try range(parts[0], addresses: true), c)
            })
        } else if spec.hasPrefix("typeof meta l4proto . ") {
            let v6: Bool
            switch spec {
            case "typeof meta l4proto . ip daddr . th dport; flags interval": v6 = false
            case "typeof meta l4proto . ip6 daddr . th dport; flags interval": v6 = true
            default: throw bad("set \(name): \(spec)")
            }
            concats[name] = (v6, try elements.map { e in
                let parts = e.split(separator: " ")
                guard parts.count == 5, parts[1] == ".", parts[3] == ".", let proto = UInt8(parts[0]),
                      proto == 6 || proto == 17 || proto == 132 else { throw bad("set \(name) element \(e)") }
                let d = try range(parts[2], addresses: true)
                guard isV6(parts[2]) == v6 else { throw bad("set \(name) element \(e): family") }
                return (proto, d, try range(parts[4], addresses: false))
            })
        } else {
            // `typeof EXPR; flags constant[, interval]`
            let words = spec.split(separator: ";")[0].split(separator: " ")
            guard words.count == 3, words[0] == "typeof" else { throw bad("set \(name): \(spec)") }
            let f = try field(words[1], words[2])
            let flags = spec.split(separator: ";").dropFirst().joined(separator: ";").trimmingCharacters(in: .whitespaces)
            guard flags == (isAddress(f) || f == .sport || f == .dport ? "flags constant, interval" : "flags constant") else {
                throw bad("set \(name): \(spec)")
            }
            sets[name] = try elements.map { try range(Substring($0), addresses: isAddress(f)) }
            setFields[name] = f
        }
        i = j + 2
    }

    // Pass 2: chains and their rules.
    var model = NftModel()
    model.setCount = sets.count + concats.count
    model.chains = Array(repeating: [], count: chainIndex.count)
    i = 0
    while i < lines.count {
        let l = lines[i]
        guard l.hasPrefix("chain ") else { i += 1; continue }
        let c = chainIndex[String(l.split(separator: " ")[1])]!
        i += 1
        while lines[i] != "}" {
            let words = lines[i].split(separator: " ")
            i += 1
            if words.isEmpty { continue }
            if words[0] == "type" {
                guard lines[i - 1].hasPrefix("type filter hook forward priority filter; policy "), model.base < 0 else {
                    throw bad("base chain \(lines[i - 1])")
                }
                model.base = c
                model.policyAccept = words.last == "accept;"
                guard words.last == "accept;" || words.last == "drop;" else { throw bad("policy \(lines[i - 1])") }
                continue
            }
            var k = 0
            var item = NftModel.Item(conditions: [], verdict: .accept)
            var verdict: NftModel.Verdict?
            while k < words.count {
                let w = words[k]
                if w == "accept" || w == "drop" {
                    verdict = w == "accept" ? .accept : .drop; k += 1
                } else if w == "jump", k + 1 < words.count, let target = chainIndex[String(words[k + 1])] {
                    verdict = .jump(target); k += 2
                } else if w == "ct", k + 2 < words.count, words[k + 1] == "state", words[k + 2] == "established,related" {
                    item.conditions.append(.established); k += 3
                } else if w == "meta", k + 8 < words.count, words[k + 2] == "." {
                    // meta l4proto . ip daddr . th dport @set
                    let name = String(words[k + 8].dropFirst())
                    guard words[k + 8].hasPrefix("@"), let s = concats[name] else { throw bad("concat \(lines[i - 1])") }
                    let expected = "meta l4proto . \(s.0 ? "ip6" : "ip") daddr . th dport"
                    guard words[k..<k + 8].joined(separator: " ") == expected else { throw bad("concat \(lines[i - 1])") }
                    item.conditions.append(.concat(v6: s.0, s.1)); k += 9
                } else if k + 2 < words.count, words[k + 2] == "vmap" {
                    let f = try field(w, words[k + 1])
                    guard f == .saddr4 || f == .saddr6, words[k + 3].hasPrefix("@"),
                          let m = maps[String(words[k + 3].dropFirst())], m.0 == (f == .saddr6) else {
                        throw bad("vmap \(lines[i - 1])")
                    }
                    verdict = .vmap(v6: m.0, m.1); k += 4
                } else if k + 2 < words.count {
                    let f = try field(w, words[k + 1])
                    let v = words[k + 2]
                    var ranges: [ValueRange]
                    if v.hasPrefix("@") {
                        let name = String(v.dropFirst())
                        guard let s = sets[name], setFields[name] == f else { throw bad("set reference \(lines[i - 1])") }
                        ranges = s; k += 3
                    } else if v == "{" {
                        // An anonymous set (kept for lists the writer leaves inline).
                        ranges = []
                        k += 3
                        while k < words.count, words[k] != "}" {
                            ranges.append(try range(words[k].hasSuffix(",") ? words[k].dropLast() : words[k], addresses: isAddress(f)))
                            k += 1
                        }
                        guard k < words.count else { throw bad("unclosed set \(lines[i - 1])") }
                        k += 1
                    } else {
                        ranges = [try range(v, addresses: isAddress(f))]; k += 3
                    }
                    item.conditions.append(.match(f, ranges))
                } else {
                    throw bad("rule \(lines[i - 1])")
                }
                if verdict != nil { break }
            }
            guard let verdict, k == words.count else { throw bad("rule without a final verdict: \(lines[i - 1])") }
            item.verdict = verdict
            model.chains[c].append(item)
        }
        i += 1
    }
    guard model.base >= 0 else { throw bad("no base chain") }
    return model
}

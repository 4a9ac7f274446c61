// The DNS side of a policy, compiled for the DNS proxy, which judges every query (spec 004, "DNS Evaluation
// Is Stricter"): the source groups in evaluation order with their sources flattened to (network, mask)
// words, each with its `dns_hostname` rules in evaluation order and their patterns as bytes.
//
//   source ─first group whose words match─► group ─first enforce-mode rule whose bytes match─► verdict
//                                                    (audit-mode rules matched on the way: findings)
//
// It decides exactly as ReferenceEvaluator.evaluateDNS walks the document, the oracle it is tested against
// (CompiledDNSPolicyTests). Why compile: walking the document copied each group and rule (strings,
// arrays, enums with payloads) to test it; that was a fifth of a forwarded query's own time.

/// A policy's DNS evaluation as flat lists. Immutable; any thread may use it.
public struct CompiledDNSPolicy: Sendable {
    struct Group {
        /// Document index.
        let index: Int
        let id: String
        /// Audit applies to its denies (the policy or the group is in audit mode).
        let audit: Bool
        /// Its CIDRs and single addresses as (network, mask).
        let v4: [(network: UInt32, mask: UInt32)]
        let v6: [(network: UInt128, mask: UInt128)]
        let rules: [Rule]

        func contains(_ address: IPAddress) -> Bool {
            switch address {
            case .v4(let value): return v4.contains { value & $0.mask == $0.network }
            case .v6(let value): return v6.contains { value & $0.mask == $0.network }
            }
        }
    }

    /// A `dns_hostname` rule as the walk reads it: a trivial value, so walking a group's rules takes no
    /// reference counts (its id and pattern, read only for the deciding rule or a regex, are in `infos`).
    struct Rule {
        /// Document index within its group.
        let index: Int32
        let audit: Bool
        let action: PolicyAction
        let match: Match
        /// The bytes compared, in `text`: the name for `.exact`, ".domain" for `.subdomain` (normalized,
        /// ASCII by construction).
        let start: Int32, count: Int32
        /// Position in `infos`.
        let info: Int32

        enum Match { case exact, subdomain, other }
    }

    /// What the walk does not compare: the rule's id and its pattern.
    struct RuleInfo {
        let id: String
        let pattern: HostnamePattern
    }

    let disabled: Bool
    /// The policy is in audit mode (denies outside any group are audited).
    let audit: Bool
    /// In evaluation order.
    let groups: [Group]
    /// Position in `groups` of each document index.
    let position: [Int]
    let infos: [RuleInfo]
    /// Every rule's bytes, one after another.
    let text: [UInt8]

    /// Compiles the DNS evaluation of `policy` in `mode`.
    public init(mode: PolicyMode, policy: PolicyConfig) {
        disabled = mode == .disabled
        audit = mode == .audit
        var infos: [RuleInfo] = [], text: [UInt8] = []
        let order = PolicyOrder.sorted(policy.sourceGroups.map(\.priority))
        groups = order.map { index in
            let group = policy.sourceGroups[index]
            var v4: [(UInt32, UInt32)] = [], v6: [(UInt128, UInt128)] = []
            let prefixes = group.sources.cidrs + group.sources.ips.map { IPPrefix(unchecked: $0, length: $0.bitWidth) }
            for prefix in prefixes {
                switch prefix.address {
                case .v4(let network):
                    v4.append((network, prefix.length == 0 ? 0 : ~UInt32(0) << (32 - prefix.length)))
                case .v6(let network):
                    v6.append((network, prefix.length == 0 ? 0 : ~UInt128(0) << (128 - prefix.length)))
                }
            }
            let rules = PolicyOrder.sorted(group.rules.map(\.priority)).compactMap { ruleIndex -> Rule? in
                let rule = group.rules[ruleIndex]
                guard let pattern = rule.match.dnsHostname else { return nil }
                let (match, bytes): (Rule.Match, [UInt8])
                switch pattern {
                case .exact(let name, _): (match, bytes) = (.exact, Array(name.utf8))
                case .subdomains(let domain, _): (match, bytes) = (.subdomain, Array(("." + domain).utf8))
                case .regex: (match, bytes) = (.other, [])
                }
                defer {
                    text += bytes
                    infos.append(RuleInfo(id: rule.id, pattern: pattern))
                }
                return Rule(index: Int32(ruleIndex), audit: rule.mode == .audit, action: rule.action, match: match,
                            start: Int32(text.count), count: Int32(bytes.count), info: Int32(infos.count))
            }
            return Group(index: index, id: group.id, audit: mode == .audit || group.mode == .audit, v4: v4, v6: v6,
                         rules: rules)
        }
        var position = Array(repeating: -1, count: policy.sourceGroups.count)
        for (at, group) in groups.enumerated() { position[group.index] = at }
        self.position = position
        self.infos = infos
        self.text = text
    }

    /// `ReferenceEvaluator.evaluateDNSLocated`: the verdict for a query for `name` (any case, trailing dot
    /// or not) from `source`, with the document indices of the claiming group and the deciding rule.
    public func evaluate(source: IPAddress, name: String) -> (verdict: Verdict, group: Int?, rule: Int?) {
        if disabled { return (ReferenceEvaluator.disabledVerdict, nil, nil) }
        // Through one buffer pointer, not by copying the group out (a copy retains each of its arrays),
        // nor by subscripting `groups` each time (each retained the array).
        return groups.withUnsafeBufferPointer { groups in
            guard let group = groups.firstIndex(where: { $0.contains(source) }).map({ groups.baseAddress! + $0 }) else {
                return (Verdict.applying(audit ? .audit : .enforce, to: .deny, decidedBy: .noGroup, sourceGroup: nil,
                                         rule: nil, findings: []), nil, nil)
            }
            var findings: [Finding] = []
            let mode: EvaluationMode = group.pointee.audit ? .audit : .enforce
            if let rule = firstEnforced(group.pointee.rules, name, audited: { audited in
                if audited.action == .deny {
                    findings.append(Finding(sourceGroup: group.pointee.id, rule: infos[Int(audited.info)].id,
                                            enforced: false))
                }
            }) {
                return (Verdict.applying(mode, to: rule.action, decidedBy: .rule, sourceGroup: group.pointee.id,
                                         rule: infos[Int(rule.info)].id, findings: findings),
                        group.pointee.index, Int(rule.index))
            }
            return (Verdict.applying(mode, to: .deny, decidedBy: .dnsNoRule, sourceGroup: group.pointee.id, rule: nil,
                                     findings: findings), group.pointee.index, nil)
        }
    }

    /// The rule that decides a query for `name` among the rules of group `group` (document index): its
    /// first enforce-mode `dns_hostname` rule matching the name; nil when none does. (The DNS proxy
    /// re-binds learned addresses by it after a policy change.)
    public func decidingRule(group: Int, name: String) -> (index: Int, id: String, action: PolicyAction)? {
        guard group >= 0, group < position.count, position[group] >= 0 else { return nil }
        return firstEnforced(groups[position[group]].rules, name, audited: { _ in })
            .map { (Int($0.index), infos[Int($0.info)].id, $0.action) }
    }

    /// The first matching enforce-mode rule of `rules` for `name`; matching audit-mode rules before it go
    /// to `audited` and are passed over. Names are compared on bytes when they are ASCII (every name on
    /// the DNS wire is: IDNs travel as punycode); others go to the pattern itself, since String equality is
    /// Unicode canonical equivalence, which a byte comparison is not. So do regular expressions.
    private func firstEnforced(_ rules: [Rule], _ name: String, audited: (Rule) -> Void) -> Rule? {
        let normal = HostnamePattern.normalize(name)
        var contiguous = normal  // withUTF8 needs a var; the copy shares the storage
        return contiguous.withUTF8 { name in
            let ascii = !name.contains { $0 >= 0x80 }
            return text.withUnsafeBufferPointer { text in
                for rule in rules {
                    let bytes = UnsafeBufferPointer(rebasing: text[Int(rule.start)..<Int(rule.start + rule.count)])
                    let matches: Bool
                    switch rule.match {
                    case .exact where ascii:
                        matches = bytes.elementsEqual(name)
                    case .subdomain where ascii:
                        // At least one byte before the dot: "*.example.com" does not match "example.com".
                        matches = name.count > bytes.count
                            && bytes.elementsEqual(UnsafeBufferPointer(rebasing: name[(name.count - bytes.count)...]))
                    default:
                        matches = infos[Int(rule.info)].pattern.matches(normalized: normal)
                    }
                    guard matches else { continue }
                    if !rule.audit { return rule }
                    audited(rule)
                }
                return nil
            }
        }
    }
}

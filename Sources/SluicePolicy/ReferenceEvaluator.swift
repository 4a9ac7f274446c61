// The plain evaluator: spec 004 ("Policy Model") and the decisions of ARCHITECTURE.md written
// as directly as possible, rule by rule, with no precomputed tables. It is the oracle the
// compiled tables are tested against (the packet tables and CompiledDNSPolicy, by which the DNS
// proxy judges queries), and what `sluice policy eval` uses.

/// Evaluation order and defaults shared by every evaluator.
public enum PolicyOrder {
    /// Indices in evaluation order: explicit priorities ascending (list order on ties), then the
    /// entries without a priority in list order. An explicit priority is a request to be placed;
    /// an omitted one means "where I am written, after the placed ones" (docs/policy.md).
    public static func sorted(_ priorities: [Int?]) -> [Int] {
        priorities.indices.sorted { a, b in
            switch (priorities[a], priorities[b]) {
            case let (x?, y?): return x != y ? x < y : a < b
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a < b
            }
        }
    }

    /// ICMP types a rule with `proto: icmp` and no type or code filter matches (spec 002: "the
    /// compiler injects a default set of common ICMP controls"): echo reply and request, and the
    /// errors path MTU discovery and traceroute need. Redirects, router and timestamp messages
    /// are left out: a workload has no business sending them through an egress gateway.
    public static let defaultICMPv4Types: [UInt8] = [0, 3, 8, 11, 12]
    /// The ICMPv6 equivalent: destination unreachable, packet too big, time exceeded, parameter
    /// problem, echo request and reply. Neighbour discovery never crosses the gateway.
    public static let defaultICMPv6Types: [UInt8] = [1, 2, 3, 4, 128, 129]
}

extension RuleMatchConfig {
    /// ICMP types the rule matches, with the default set injected for bare ICMP rules.
    public var effectiveICMPTypes: [UInt8] {
        guard icmpTypes.isEmpty, icmpCodes.isEmpty else { return icmpTypes }
        switch proto {
        case .icmp?: return PolicyOrder.defaultICMPv4Types
        case .icmpv6?: return PolicyOrder.defaultICMPv6Types
        default: return []
        }
    }

    /// Whether the L3/L4 selectors match (everything but TLS), hostname rules through `learned`.
    func matchesPacket(_ packet: PacketQuery, learned: (IPAddress) -> Bool) -> Bool {
        if !dstCidrs.isEmpty || !dstIps.isEmpty {
            guard dstCidrs.contains(where: { $0.contains(packet.dst) }) || dstIps.contains(packet.dst) else { return false }
        }
        if dnsHostname != nil, !learned(packet.dst) { return false }
        if case .number(let number)? = proto, number != packet.proto { return false }
        if !srcPorts.isEmpty {
            guard packet.hasPorts, srcPorts.contains(where: { $0.contains(packet.srcPort) }) else { return false }
        }
        if !dstPorts.isEmpty {
            guard packet.hasPorts, dstPorts.contains(where: { $0.contains(packet.dstPort) }) else { return false }
        }
        let types = effectiveICMPTypes
        if !types.isEmpty {
            guard packet.isICMP, types.contains(packet.icmpType) else { return false }
        }
        if !icmpCodes.isEmpty {
            guard packet.isICMP, icmpCodes.contains(packet.icmpCode) else { return false }
        }
        // TLS runs over TCP only: a tls rule never matches other protocols.
        if tls != nil, packet.proto != 6 { return false }
        return true
    }
}

/// What a `tls` block says about a handshake seen so far.
public enum TLSMatchResult: Sendable, Equatable {
    /// Every matcher is satisfied.
    case match
    /// A matcher is not satisfied: the rule does not match.
    case noMatch
    /// The SNI matchers are satisfied but the certificate matchers need the server's flight,
    /// which has not been seen yet (`TLSObservation.awaitingCertificate`).
    case needsCertificate
}

extension TlsMatchConfig {
    /// Whether a seen handshake satisfies every matcher of the block (docs/policy.md, "TLS").
    public func matches(_ seen: TLSObservation) -> Bool {
        decide(seen) { _ in seen.chainVerified } == .match
    }

    /// The block's answer for `seen`. `verifyChain` says whether the server chain verifies against
    /// the given PEM trust anchors; it is asked only when the block has anchors and the
    /// certificate was seen (the dataplane verifies lazily, per anchor set).
    public func decide(_ seen: TLSObservation, verifyChain: ([String]) -> Bool) -> TLSMatchResult {
        if (mode ?? .metadata) == .intercept { return .noMatch }  // HTTP matchers need decryption
        if let sni {
            guard let name = seen.sni, sni.matches(name) else { return .noMatch }
        }
        guard needsCertificate else { return .match }
        guard let certificate = seen.certificate else {
            if seen.awaitingCertificate { return .needsCertificate }
            // TLS 1.3 hides the certificate: the operator's choice decides the certificate matchers.
            return tls13Uninspectable == .allow ? .match : .noMatch
        }
        if let serverSan, !certificate.subjectAlternativeNames.contains(where: { serverSan.matches($0) }) {
            return .noMatch
        }
        if let serverCn {
            guard let cn = certificate.commonName, serverCn.matches(cn) else { return .noMatch }
        }
        if let serverDn {
            guard let dn = certificate.distinguishedName,
                  DistinguishedName.normalize(dn) == DistinguishedName.normalize(serverDn) else { return .noMatch }
        }
        let fingerprint = certificate.sha256.lowercased()
        if !fingerprintSha256.isEmpty, !fingerprintSha256.contains(where: { $0.lowercased() == fingerprint }) {
            return .noMatch
        }
        if !trustAnchorsPem.isEmpty, !verifyChain(trustAnchorsPem) { return .noMatch }
        return .match
    }
}

/// Distinguished-name comparison: attribute types upper-cased, spaces around `,`, `+` and `=`
/// removed, values compared case-sensitively as written (RFC 4514 string form).
public enum DistinguishedName {
    public static func normalize(_ dn: String) -> String {
        var parts: [String] = []
        for rdn in dn.split(separator: ",") {
            let pair = rdn.split(separator: "=", maxSplits: 1)
            let type = pair.first.map { $0.trimmingCharacters(in: .whitespaces).uppercased() } ?? ""
            let value = pair.count > 1 ? pair[1].trimmingCharacters(in: .whitespaces) : ""
            parts.append("\(type)=\(value)")
        }
        return parts.joined(separator: ",")
    }
}

/// Evaluates a policy exactly as the policy model describes, one rule at a time.
public struct ReferenceEvaluator: Sendable {
    public let mode: PolicyMode
    public let policy: PolicyConfig
    /// Source groups in evaluation order (indices into `policy.sourceGroups`).
    let groupOrder: [Int]
    /// Per group (document index), its rules in evaluation order.
    let ruleOrder: [[Int]]

    public init(mode: PolicyMode, policy: PolicyConfig) {
        self.mode = mode
        self.policy = policy
        groupOrder = PolicyOrder.sorted(policy.sourceGroups.map(\.priority))
        ruleOrder = policy.sourceGroups.map { PolicyOrder.sorted($0.rules.map(\.priority)) }
    }

    public init(_ request: PolicyRequest) {
        self.init(mode: request.mode, policy: request.policy)
    }

    /// Whether a group claims the source address.
    static func contains(_ group: SourceGroupConfig, _ address: IPAddress) -> Bool {
        group.sources.cidrs.contains { $0.contains(address) } || group.sources.ips.contains(address)
    }

    /// What the policy does to a packet. `tls` is the handshake when it has been seen; without
    /// it a matching rule with a `tls` block leaves the flow pending (`DecidedBy.tlsPending`).
    public func evaluate(_ packet: PacketQuery, learned: some LearnedAddressLookup = NoLearnedAddresses(),
                         tls: TLSObservation? = nil) -> Verdict {
        if mode == .disabled { return ReferenceEvaluator.disabledVerdict }
        var findings: [Finding] = []
        for groupIndex in groupOrder {
            let group = policy.sourceGroups[groupIndex]
            guard ReferenceEvaluator.contains(group, packet.src) else { continue }
            for ruleIndex in ruleOrder[groupIndex] {
                let rule = group.rules[ruleIndex]
                let l4 = rule.match.matchesPacket(packet) {
                    learned.contains(group: groupIndex, rule: ruleIndex, address: $0)
                }
                guard l4 else { continue }
                if let block = rule.match.tls {
                    guard let tls else {
                        // Undecidable until the handshake: an audit rule records nothing yet.
                        if rule.mode == .audit { continue }
                        return Verdict(verdict: .allow, decision: .allow, decidedBy: .tlsPending, sourceGroup: group.id,
                                       rule: rule.id, mode: effectiveMode(group), findings: findings)
                    }
                    switch block.decide(tls, verifyChain: { _ in tls.chainVerified }) {
                    case .match: break
                    case .noMatch: continue
                    case .needsCertificate:
                        if rule.mode == .audit { continue }
                        return Verdict(verdict: .allow, decision: .allow, decidedBy: .tlsPending, sourceGroup: group.id,
                                       rule: rule.id, mode: effectiveMode(group), findings: findings)
                    }
                }
                if rule.mode == .audit {
                    if rule.action == .deny {
                        findings.append(Finding(sourceGroup: group.id, rule: rule.id, enforced: false))
                    }
                    continue
                }
                return finish(rule.action, .rule, group, rule.id, findings)
            }
            if let fallback = group.defaultAction {
                return finish(fallback, .groupDefault, group, nil, findings)
            }
        }
        return finish(policy.defaultPolicy ?? .deny, .defaultPolicy, nil, nil, findings)
    }

    /// What the DNS policy does to a query for `name` from `source` (spec 004, "DNS Evaluation
    /// Is Stricter"). The verdict's group and rule are those learned addresses are bound to.
    public func evaluateDNS(source: IPAddress, name: String) -> Verdict {
        evaluateDNSLocated(source: source, name: name).verdict
    }

    /// `evaluateDNS`, with the document indices of the group that claimed the source and of the rule that
    /// decided (what the DNS proxy binds learned addresses to). The first group containing the source
    /// decides; its rules are walked in order, audit-mode ones recorded and passed over, and the first
    /// enforce-mode rule whose `dns_hostname` matches decides; no such rule: deny.
    public func evaluateDNSLocated(source: IPAddress, name: String) -> (verdict: Verdict, group: Int?, rule: Int?) {
        if mode == .disabled { return (ReferenceEvaluator.disabledVerdict, nil, nil) }
        guard let groupIndex = groupOrder.first(where: { ReferenceEvaluator.contains(policy.sourceGroups[$0], source) })
        else {
            return (finish(.deny, .noGroup, nil, nil, []), nil, nil)
        }
        let group = policy.sourceGroups[groupIndex]
        var findings: [Finding] = []
        for ruleIndex in ruleOrder[groupIndex] {
            let rule = group.rules[ruleIndex]
            guard let pattern = rule.match.dnsHostname, pattern.matches(name) else { continue }
            if rule.mode != .audit {
                return (finish(rule.action, .rule, group, rule.id, findings), groupIndex, ruleIndex)
            }
            if rule.action == .deny { findings.append(Finding(sourceGroup: group.id, rule: rule.id, enforced: false)) }
        }
        return (finish(.deny, .dnsNoRule, group, nil, findings), groupIndex, nil)
    }

    static let disabledVerdict = Verdict(verdict: .deny, decision: .deny, decidedBy: .disabled, sourceGroup: nil,
                                         rule: nil, mode: .disabled, findings: [])

    /// Audit applies when the policy is in audit mode or the deciding group is.
    func effectiveMode(_ group: SourceGroupConfig?) -> EvaluationMode {
        mode == .audit || group?.mode == .audit ? .audit : .enforce
    }

    /// Applies the audit modes to a decision and records the final deny.
    func finish(_ decision: PolicyAction, _ decidedBy: DecidedBy, _ group: SourceGroupConfig?, _ rule: String?,
                _ findings: [Finding]) -> Verdict {
        Verdict.applying(effectiveMode(group), to: decision, decidedBy: decidedBy, sourceGroup: group?.id, rule: rule,
                         findings: findings)
    }
}

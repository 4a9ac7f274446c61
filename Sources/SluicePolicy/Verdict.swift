// What a policy does to one packet or one DNS query: the enforced action, the decision of the
// policy logic before audit modes relaxed it, who decided, and the findings to record.
// Shared by the reference evaluator and the compiled tables so that the two can be compared.

/// The inputs of a packet decision: addresses, protocol and the L4 fields that exist for it.
public struct PacketQuery: Sendable, Equatable, CustomStringConvertible {
    public var src: IPAddress
    public var dst: IPAddress
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    public var proto: UInt8
    /// Ports; meaningful for TCP, UDP and SCTP only.
    public var srcPort: UInt16
    public var dstPort: UInt16
    /// ICMP type and code; meaningful for ICMP and ICMPv6 only.
    public var icmpType: UInt8
    public var icmpCode: UInt8

    public init(src: IPAddress, dst: IPAddress, proto: UInt8, srcPort: UInt16 = 0, dstPort: UInt16 = 0,
                icmpType: UInt8 = 0, icmpCode: UInt8 = 0) {
        self.src = src
        self.dst = dst
        self.proto = proto
        self.srcPort = srcPort
        self.dstPort = dstPort
        self.icmpType = icmpType
        self.icmpCode = icmpCode
    }

    /// Whether the protocol carries ports (TCP, UDP, SCTP).
    public var hasPorts: Bool { PacketQuery.hasPorts(proto) }
    /// Whether the protocol is ICMP or ICMPv6.
    public var isICMP: Bool { proto == 1 || proto == 58 }

    /// Whether IP protocol `proto` carries ports (TCP, UDP, SCTP).
    @inline(__always)
    public static func hasPorts(_ proto: UInt8) -> Bool { proto == 6 || proto == 17 || proto == 132 }

    public var description: String {
        let l4 = hasPorts ? " \(srcPort) -> \(dstPort)" : (isICMP ? " type \(icmpType) code \(icmpCode)" : "")
        return "\(src) -> \(dst) proto \(ProtoValue.number(proto))\(l4)"
    }
}

/// Which part of the policy produced a decision.
public enum DecidedBy: String, Sendable, Codable, CaseIterable {
    /// A rule matched.
    case rule
    /// No rule matched; the source group's `default_action` decided.
    case groupDefault = "group_default"
    /// No source group decided; the top-level `default_policy` did (deny when unset).
    case defaultPolicy = "default_policy"
    /// DNS: the claiming source group has no matching DNS rule (always deny).
    case dnsNoRule = "dns_no_rule"
    /// DNS: no source group contains the source (always deny).
    case noGroup = "no_group"
    /// The policy is disabled, so it is not active and nothing it says applies; Sluice fails closed.
    case disabled
    /// The first matching rule has a `tls` block and the handshake has not been seen yet: the
    /// flow may proceed up to its first application data while the handshake is inspected.
    case tlsPending = "tls_pending"
}

/// The mode under which a decision was taken.
public enum EvaluationMode: String, Sendable, Codable {
    case audit, enforce, disabled
}

/// A deny the policy produced, enforced or only observed. Group and rule are ids.
public struct Finding: Sendable, Equatable, Hashable, Codable {
    public var sourceGroup: String?
    public var rule: String?
    /// false when an audit mode turned the deny into an allow (or the rule is in audit mode).
    public var enforced: Bool

    public init(sourceGroup: String?, rule: String?, enforced: Bool) {
        self.sourceGroup = sourceGroup
        self.rule = rule
        self.enforced = enforced
    }

    private enum CodingKeys: String, CodingKey {
        case sourceGroup = "source_group", rule, enforced
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        // Explicit nulls: consumers read the three keys whether or not a group or rule decided.
        try container.encode(sourceGroup, forKey: .sourceGroup)
        try container.encode(rule, forKey: .rule)
        try container.encode(enforced, forKey: .enforced)
    }
}

/// The outcome of evaluating a packet or a DNS query.
public struct Verdict: Sendable, Equatable, Codable {
    /// What is enforced: the action the gateway takes.
    public var verdict: PolicyAction
    /// What the policy logic decided before audit modes turned a deny into an allow.
    public var decision: PolicyAction
    public var decidedBy: DecidedBy
    /// Id of the source group that decided, if one did.
    public var sourceGroup: String?
    /// Id of the rule that decided, if one did.
    public var rule: String?
    public var mode: EvaluationMode
    /// Denies to record: the final one (enforced or audited) and those of audit-mode rules.
    public var findings: [Finding]

    public init(verdict: PolicyAction, decision: PolicyAction, decidedBy: DecidedBy, sourceGroup: String?,
                rule: String?, mode: EvaluationMode, findings: [Finding]) {
        self.verdict = verdict
        self.decision = decision
        self.decidedBy = decidedBy
        self.sourceGroup = sourceGroup
        self.rule = rule
        self.mode = mode
        self.findings = findings
    }

    /// The verdict for `decision` under `mode`: a deny is recorded as a finding (enforced unless the mode
    /// is audit, which turns it into an allow); `findings` are those recorded before it.
    public static func applying(_ mode: EvaluationMode, to decision: PolicyAction, decidedBy: DecidedBy,
                                sourceGroup: String?, rule: String?, findings: [Finding]) -> Verdict {
        var findings = findings
        var verdict = decision
        if decision == .deny {
            let enforced = mode == .enforce
            findings.append(Finding(sourceGroup: sourceGroup, rule: rule, enforced: enforced))
            if !enforced { verdict = .allow }
        }
        return Verdict(verdict: verdict, decision: decision, decidedBy: decidedBy, sourceGroup: sourceGroup, rule: rule,
                       mode: mode, findings: findings)
    }

    private enum CodingKeys: String, CodingKey {
        case verdict, decision, mode, findings, rule
        case decidedBy = "decided_by", sourceGroup = "source_group"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(verdict, forKey: .verdict)
        try container.encode(decision, forKey: .decision)
        try container.encode(decidedBy, forKey: .decidedBy)
        try container.encode(sourceGroup, forKey: .sourceGroup)
        try container.encode(rule, forKey: .rule)
        try container.encode(mode, forKey: .mode)
        try container.encode(findings, forKey: .findings)
    }
}

/// Addresses learned from DNS answers, per rule. Group and rule are indices in document order
/// (`policy.sourceGroups[group].rules[rule]`).
public protocol LearnedAddressLookup {
    /// Whether `address` was learned for that rule and has not expired.
    func contains(group: Int, rule: Int, address: IPAddress) -> Bool
}

/// No learned addresses: hostname rules then match no packet.
public struct NoLearnedAddresses: LearnedAddressLookup, Sendable {
    public init() {}
    @inline(__always)
    public func contains(group: Int, rule: Int, address: IPAddress) -> Bool { false }
}

/// What a TLS handshake showed, for rules with a `tls` block.
public struct TLSObservation: Sendable, Equatable {
    /// The server name the client asked for, if it sent one.
    public var sni: String?
    /// Whether the negotiated version is TLS 1.3 (the certificate is then encrypted).
    public var tls13: Bool
    /// The leaf certificate, when it was visible.
    public var certificate: CertificateInfo?
    /// Whether the server chain verified against the rule's trust anchors.
    public var chainVerified: Bool
    /// Whether the server's flight is still to come: certificate matchers then answer
    /// "needs certificate" (the flow stays pending) instead of deciding as if it were hidden.
    public var awaitingCertificate: Bool
    /// Whether the ClientHello carried an Encrypted Client Hello extension (`sni` is then the
    /// outer, public name; docs/policy.md, "TLS").
    public var encryptedClientHello: Bool

    public init(sni: String?, tls13: Bool = false, certificate: CertificateInfo? = nil, chainVerified: Bool = false,
                awaitingCertificate: Bool = false, encryptedClientHello: Bool = false) {
        self.sni = sni
        self.tls13 = tls13
        self.certificate = certificate
        self.chainVerified = chainVerified
        self.awaitingCertificate = awaitingCertificate
        self.encryptedClientHello = encryptedClientHello
    }
}

/// Fields of a server's leaf certificate.
public struct CertificateInfo: Sendable, Equatable {
    public var subjectAlternativeNames: [String]
    public var commonName: String?
    public var distinguishedName: String?
    /// Lower-case hex SHA-256 of the DER certificate.
    public var sha256: String

    public init(subjectAlternativeNames: [String], commonName: String?, distinguishedName: String?, sha256: String) {
        self.subjectAlternativeNames = subjectAlternativeNames
        self.commonName = commonName
        self.distinguishedName = distinguishedName
        self.sha256 = sha256
    }
}

// The DNS side of the active policy: its DNS evaluation compiled (CompiledDNSPolicy, which decides as the
// reference evaluator's `evaluateDNS`: spec 004, "DNS Evaluation Is Stricter": the first claiming group
// decides, the first matching dns_hostname rule wins, otherwise deny), located by document indices, which
// bind learned addresses to what the compiled packet tables call a rule.
import SluicePolicy

/// What the DNS policy says about one query.
public struct DNSDecision: Sendable, Equatable {
    /// The evaluator's verdict (enforced action, decision before audit, findings).
    public var verdict: Verdict
    /// Document indices of the enforce-mode allow rule that decided, when one did: learned addresses
    /// are bound to it. Nil for denies and for audit-mode allows (no rule allowed the name).
    public var allowingRule: (group: Int, rule: Int)?

    public static func == (lhs: DNSDecision, rhs: DNSDecision) -> Bool {
        lhs.verdict == rhs.verdict && lhs.allowingRule?.group == rhs.allowingRule?.group
            && lhs.allowingRule?.rule == rhs.allowingRule?.rule
    }

    /// Document index of the group that claimed the source, if one did.
    public var claimingGroup: Int?
}

/// One active policy as the DNS proxy uses it. Immutable; shared by reference between query tasks.
public final class DNSPolicy: Sendable {
    /// The stored policy's id (for findings).
    public let policyID: String
    /// Its version, for logs.
    public let version: Int
    /// Its mode.
    public let mode: PolicyMode
    /// Its DNS evaluation, compiled.
    public let compiled: CompiledDNSPolicy
    private let groupIndex: [String: Int]

    /// Wraps a parsed policy.
    public init(policyID: String, version: Int = 0, mode: PolicyMode, config: PolicyConfig) {
        self.policyID = policyID
        self.version = version
        self.mode = mode
        compiled = CompiledDNSPolicy(mode: mode, policy: config)
        var groups: [String: Int] = [:]
        for (index, group) in config.sourceGroups.enumerated() where groups[group.id] == nil {
            groups[group.id] = index
        }
        groupIndex = groups
    }

    /// Judges a query for `name` (any case, trailing dot or not) from `source`.
    public func judge(source: IPAddress, name: String) -> DNSDecision {
        let (verdict, group, rule) = compiled.evaluate(source: source, name: name)
        var allowing: (Int, Int)? = nil
        if verdict.decision == .allow, verdict.decidedBy == .rule, let group, let rule { allowing = (group, rule) }
        return DNSDecision(verdict: verdict, allowingRule: allowing, claimingGroup: group)
    }

    /// Document index of a group id.
    public func groupIndex(of id: String) -> Int? { groupIndex[id] }

    /// Where a binding learned under an earlier policy belongs now: the indices of rule `ruleID` of group
    /// `groupID` when, in this policy, it is still the rule that decides `name` for that group's sources
    /// and it allows it.
    public func rebinding(hostname name: String, groupID: String, ruleID: String) -> (group: Int, rule: Int)? {
        guard mode != .disabled, let group = groupIndex[groupID],
              let rule = compiled.decidingRule(group: group, name: name), rule.id == ruleID, rule.action == .allow
        else { return nil }
        return (group, rule.index)
    }
}

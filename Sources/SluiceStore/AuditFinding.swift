// Audit findings as the store keeps them: one row per aggregation key, counting how often the
// same decision was seen between first_seen and last_seen. The key follows issue 4: type, policy,
// source group, rule, destination, port, protocol, hostname/SNI, ICMP type/code; `enforced` is
// part of the key too, so the would-be denies of an audit run stay visible next to the real
// denies after promotion instead of being overwritten by them.
import Foundation

/// An aggregated finding.
public struct AuditFinding: Sendable, Equatable {
    /// Kind of decision, e.g. `packet_deny`, `dns_deny`, `tls_deny`.
    public var type: String
    /// The policy that produced it.
    public var policyID: String
    /// Source group id, nil when no group claimed the source (the top-level default decided).
    public var sourceGroup: String?
    /// Rule id, or nil when a default (`default_action`, `default_policy`) decided.
    public var rule: String?
    /// Destination address (text form).
    public var destination: String?
    /// Destination port (TCP/UDP).
    public var port: Int?
    /// Protocol name or number as text.
    public var proto: String?
    /// DNS name or TLS SNI involved, if any.
    public var hostname: String?
    /// ICMP type, for ICMP decisions.
    public var icmpType: Int?
    /// ICMP code, for ICMP decisions.
    public var icmpCode: Int?
    /// Whether the deny was carried out (false: audit, it was turned into an allow).
    public var enforced: Bool
    /// First time this key was seen.
    public var firstSeen: Date
    /// Last time this key was seen.
    public var lastSeen: Date
    /// How many times it was seen.
    public var count: Int

    public init(
        type: String, policyID: String, sourceGroup: String? = nil, rule: String? = nil,
        destination: String? = nil, port: Int? = nil, proto: String? = nil, hostname: String? = nil,
        icmpType: Int? = nil, icmpCode: Int? = nil, enforced: Bool, firstSeen: Date, lastSeen: Date,
        count: Int = 1
    ) {
        self.type = type
        self.policyID = policyID
        self.sourceGroup = sourceGroup
        self.rule = rule
        self.destination = destination
        self.port = port
        self.proto = proto
        self.hostname = hostname
        self.icmpType = icmpType
        self.icmpCode = icmpCode
        self.enforced = enforced
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.count = count
    }

    /// The aggregation key as one string (fields joined by U+001F, which no field can contain in
    /// practice), used as the unique key in storage and in the in-memory aggregator.
    public var aggregationKey: String {
        let parts: [String] = [
            type, policyID, sourceGroup ?? "", rule ?? "", destination ?? "", port.map(String.init) ?? "",
            proto ?? "", hostname ?? "", icmpType.map(String.init) ?? "", icmpCode.map(String.init) ?? "",
            enforced ? "1" : "0",
        ]
        return parts.joined(separator: "\u{1f}")
    }

    /// Folds another observation of the same key into this one.
    public mutating func merge(_ other: AuditFinding) {
        firstSeen = min(firstSeen, other.firstSeen)
        lastSeen = max(lastSeen, other.lastSeen)
        count += other.count
    }
}

/// Which findings to return; nil fields do not filter.
public struct FindingFilter: Sendable, Equatable {
    /// Only this type.
    public var type: String?
    /// Only this source group.
    public var sourceGroup: String?
    /// Only this policy.
    public var policyID: String?
    /// Only findings last seen at or after this time.
    public var since: Date?
    /// Only findings last seen at or before this time.
    public var until: Date?
    /// At most this many rows (newest `last_seen` first).
    public var limit: Int

    public init(
        type: String? = nil, sourceGroup: String? = nil, policyID: String? = nil, since: Date? = nil,
        until: Date? = nil, limit: Int = 100
    ) {
        self.type = type
        self.sourceGroup = sourceGroup
        self.policyID = policyID
        self.since = since
        self.until = until
        self.limit = limit
    }
}

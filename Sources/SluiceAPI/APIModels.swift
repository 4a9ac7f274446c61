// The JSON shapes of the API's responses and small request bodies, with the snake_case field names
// the spec documents use. Each maps from a store type in one place.
import Foundation
import Hummingbird
import SluicePolicy
import SluiceStore

/// A policy record: `{id, name, mode, active, created_at, updated_at, version, policy}`, plus on
/// writes the `deployment` that says which generation runs and whether the dataplane confirmed it.
/// The policy is held as its stored canonical text: a single record goes out with that text spliced
/// in as is (`responseBody`), lists parse it back for the encoder.
struct PolicyJSON: ResponseEncodable {
    var id: String
    var name: String?
    var mode: PolicyMode
    var active: Bool
    var createdAt: Date
    var updatedAt: Date
    var version: Int
    /// The policy object's canonical text (JSONValue.canonicalText), as the store holds it.
    var policyText: String
    var deployment: DeploymentJSON?
    /// Parser warnings on writes (accepted, but worth a look).
    var warnings: [APIErrorDetail]?

    enum CodingKeys: String, CodingKey {
        case id, name, mode, active, version, policy, deployment, warnings
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    init(_ stored: StoredPolicy, deployment: DeploymentState? = nil, warnings: [ValidationIssue] = []) {
        id = stored.id
        name = stored.name
        mode = stored.mode
        active = stored.active
        createdAt = stored.createdAt
        updatedAt = stored.updatedAt
        version = stored.version
        policyText = stored.body
        self.deployment = deployment.map(DeploymentJSON.init)
        self.warnings = warnings.isEmpty ? nil : warnings.map { APIErrorDetail(path: $0.path, message: $0.message) }
    }

    /// Set in an encoder's user info: the policy is written as `null`, to be spliced in afterwards.
    static let policyPlaceholder = CodingUserInfoKey(rawValue: "sluice.policyPlaceholder")!

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encodeIfPresent(name, forKey: .name)
        try container.encode(mode, forKey: .mode)
        try container.encode(active, forKey: .active)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
        try container.encode(version, forKey: .version)
        if encoder.userInfo[Self.policyPlaceholder] as? Bool == true {
            try container.encode(JSONValue.null, forKey: .policy)
        } else {
            try container.encode(try JSONValue.stored(policyText), forKey: .policy)
        }
        try container.encodeIfPresent(deployment, forKey: .deployment)
        try container.encodeIfPresent(warnings, forKey: .warnings)
    }

    /// The record as `encoder` (the API's: sorted keys) writes it, with the stored policy text
    /// spliced in instead of parsed and encoded again: for a 10,000-rule policy that took about a
    /// quarter of a write. The placeholder `"policy":null` can only be the top-level member: no
    /// other object here has a `policy` key, and inside a JSON string every quote is escaped.
    func responseBody(encoder: JSONEncoder) throws -> [UInt8] {
        encoder.userInfo[Self.policyPlaceholder] = true
        let skeleton = [UInt8](try encoder.encode(self))
        let placeholder = Array(#""policy":null"#.utf8)
        guard let start = skeleton.firstRange(of: placeholder)?.lowerBound else {
            throw APIError(.internalServerError, "policy record without its policy member")
        }
        let valueStart = start + placeholder.count - "null".utf8.count  // keep `"policy":`, replace `null`
        return Array(skeleton[..<valueStart]) + Array(policyText.utf8) + Array(skeleton[(start + placeholder.count)...])
    }
}

/// The deployment state as JSON.
struct DeploymentJSON: ResponseEncodable, Decodable, Equatable {
    var generation: UInt64
    var policyID: String?
    var version: Int?
    var mode: PolicyMode?
    var compiled: Bool
    var dataplane: String
    var error: String?

    enum CodingKeys: String, CodingKey {
        case generation, version, mode, compiled, dataplane, error
        case policyID = "policy_id"
    }

    init(_ state: DeploymentState) {
        generation = state.generation
        policyID = state.policyID
        version = state.version
        mode = state.mode
        compiled = state.compiled
        dataplane = state.dataplane
        error = state.error
    }
}

/// `GET /policies`.
struct PolicyListJSON: ResponseEncodable {
    var policies: [PolicyJSON]
}

/// One entry of `GET /policies/:id/versions`.
struct PolicyVersionJSON: ResponseEncodable {
    var policyID: String
    var version: Int
    var name: String?
    var mode: PolicyMode
    var createdAt: Date
    var actor: String
    var policy: JSONValue

    enum CodingKeys: String, CodingKey {
        case version, name, mode, actor, policy
        case policyID = "policy_id"
        case createdAt = "created_at"
    }

    init(_ stored: PolicyVersion) throws {
        policyID = stored.policyID
        version = stored.version
        name = stored.name
        mode = stored.mode
        createdAt = stored.createdAt
        actor = stored.actor
        policy = try JSONValue.stored(stored.body)
    }
}

/// `GET /policies/:id/versions`.
struct PolicyVersionListJSON: ResponseEncodable {
    var versions: [PolicyVersionJSON]
}

/// `GET|PUT /settings/performance-mode`.
struct PerformanceModeJSON: ResponseEncodable, Decodable {
    var enabled: Bool
}

/// One aggregated audit finding.
struct FindingJSON: ResponseEncodable, Decodable {
    var findingType: String
    var policyID: String
    var sourceGroup: String?
    var rule: String?
    var destination: String?
    var port: Int?
    var proto: String?
    var hostname: String?
    var icmpType: Int?
    var icmpCode: Int?
    var enforced: Bool
    var firstSeen: Date
    var lastSeen: Date
    var count: Int

    enum CodingKeys: String, CodingKey {
        case rule, destination, port, proto, hostname, enforced, count
        case findingType = "finding_type"
        case policyID = "policy_id"
        case sourceGroup = "source_group"
        case icmpType = "icmp_type"
        case icmpCode = "icmp_code"
        case firstSeen = "first_seen"
        case lastSeen = "last_seen"
    }

    init(_ finding: AuditFinding) {
        findingType = finding.type
        policyID = finding.policyID
        sourceGroup = finding.sourceGroup
        rule = finding.rule
        destination = finding.destination
        port = finding.port
        proto = finding.proto
        hostname = finding.hostname
        icmpType = finding.icmpType
        icmpCode = finding.icmpCode
        enforced = finding.enforced
        firstSeen = finding.firstSeen
        lastSeen = finding.lastSeen
        count = finding.count
    }
}

/// `GET /audit/findings`.
struct FindingListJSON: ResponseEncodable, Decodable {
    var findings: [FindingJSON]
}

/// One admin log line.
struct AdminLogEntryJSON: ResponseEncodable, Decodable {
    var seq: Int64
    var at: Date
    var actor: String
    var action: String
    var target: String
    var before: [String: String]?
    var after: [String: String]?

    init(_ entry: AdminLogEntry) {
        seq = entry.seq
        at = entry.at
        actor = entry.actor
        action = entry.action
        target = entry.target
        before = entry.before
        after = entry.after
    }
}

/// `GET /admin-log`.
struct AdminLogJSON: ResponseEncodable, Decodable {
    var entries: [AdminLogEntryJSON]
}

/// A service account.
struct ServiceAccountJSON: ResponseEncodable, Decodable {
    var id: String
    var name: String
    var role: Role
    var createdAt: Date
    var disabledAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, name, role
        case createdAt = "created_at"
        case disabledAt = "disabled_at"
    }

    init(_ account: ServiceAccount) {
        id = account.id
        name = account.name
        role = account.role
        createdAt = account.createdAt
        disabledAt = account.disabledAt
    }
}

/// `GET /service-accounts`.
struct ServiceAccountListJSON: ResponseEncodable, Decodable {
    var serviceAccounts: [ServiceAccountJSON]

    enum CodingKeys: String, CodingKey {
        case serviceAccounts = "service_accounts"
    }
}

/// `POST /service-accounts` body.
struct CreateServiceAccountJSON: Decodable {
    var name: String
    var role: Role
}

/// `POST /service-accounts/:id/tokens` body (all optional).
struct CreateTokenJSON: Decodable {
    var name: String?
}

/// A token's metadata; `token` (the secret text) only in the creation response.
struct TokenJSON: ResponseEncodable, Decodable {
    var id: String
    var accountID: String
    var name: String?
    var createdAt: Date
    var revokedAt: Date?
    var token: String?

    enum CodingKeys: String, CodingKey {
        case id, name, token
        case accountID = "account_id"
        case createdAt = "created_at"
        case revokedAt = "revoked_at"
    }

    init(_ record: TokenRecord, text: String? = nil) {
        id = record.id
        accountID = record.accountID
        name = record.name
        createdAt = record.createdAt
        revokedAt = record.revokedAt
        token = text
    }
}

/// `GET /service-accounts/:id/tokens`.
struct TokenListJSON: ResponseEncodable, Decodable {
    var tokens: [TokenJSON]
}

/// `GET /health`.
struct HealthJSON: ResponseEncodable, Decodable {
    var status: String
}

/// One named readiness check.
struct ReadinessCheckJSON: ResponseEncodable, Decodable, Equatable {
    var name: String
    /// `ok`, `fail`, or `absent` (the component does not exist on this node, which is not a failure).
    var status: String
    var detail: String
}

/// `GET /ready`.
struct ReadinessJSON: ResponseEncodable, Decodable {
    var ready: Bool
    var checks: [ReadinessCheckJSON]
}

/// `GET /api/v1/stats`.
struct StatsJSON: ResponseEncodable, Decodable {
    var policy: DeploymentJSON
    var dataplane: DataplaneStatsJSON
    var dns: ComponentCountersJSON
    var findings: FindingStatsJSON
    var wiretap: WiretapStatistics
}

/// The dataplane part of the stats.
struct DataplaneStatsJSON: ResponseEncodable, Decodable {
    var kind: String
    var running: Bool
    var confirmedGeneration: UInt64?
    var detail: String
    var counters: [String: UInt64]

    enum CodingKeys: String, CodingKey {
        case kind, running, detail, counters
        case confirmedGeneration = "confirmed_generation"
    }
}

/// Counters of a component that may be absent.
struct ComponentCountersJSON: ResponseEncodable, Decodable {
    var present: Bool
    var counters: [String: UInt64]
}

/// The findings pipeline's own counters.
struct FindingStatsJSON: ResponseEncodable, Decodable {
    var dropped: UInt64
}

/// `GET /api/v1/dns-cache`.
struct DNSCacheJSON: ResponseEncodable, Decodable {
    var entries: [DNSCacheEntry]
}

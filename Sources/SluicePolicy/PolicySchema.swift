// The policy payload of the management API (spec 002, "Configuration Schema"), as Swift values.
// Values are already checked: a `PolicyRequest` only exists if `PolicyParser` accepted the
// document, so CIDRs, ports and regular expressions here are parsed, not raw strings.
// JSON names are those of the schema; `PolicySchema+Coding.swift` maps them.

/// Top-level mode of a stored policy (spec 004, "Top-Level Policy Mode").
public enum PolicyMode: String, Sendable, CaseIterable, Codable {
    /// Kept in storage, never active.
    case disabled
    /// Evaluated; every final deny becomes an allow and is recorded as a finding.
    case audit
    /// Normal allow and deny behaviour.
    case enforce
}

/// Mode of a source group or a rule: whether it takes part in enforcement.
public enum RuleMode: String, Sendable, CaseIterable, Codable {
    case audit
    case enforce
}

/// An allow or deny action.
public enum PolicyAction: String, Sendable, CaseIterable, Codable {
    case allow
    case deny
}

/// The request envelope accepted by `POST /api/v1/policies` and the `PUT` routes.
public struct PolicyRequest: Sendable, Equatable {
    /// Whether the policy is disabled, audited or enforced.
    public var mode: PolicyMode
    /// Optional stable name used for lookup by name.
    public var name: String?
    /// The policy itself.
    public var policy: PolicyConfig

    public init(mode: PolicyMode, name: String? = nil, policy: PolicyConfig) {
        self.mode = mode
        self.name = name
        self.policy = policy
    }
}

/// The policy object: a default and an ordered list of source groups.
public struct PolicyConfig: Sendable, Equatable {
    /// Action when no source group decides; nil when the document leaves it unset (then deny).
    public var defaultPolicy: PolicyAction?
    /// Source groups in document order (evaluation order comes from `priority`, then this order).
    public var sourceGroups: [SourceGroupConfig]

    public init(defaultPolicy: PolicyAction? = nil, sourceGroups: [SourceGroupConfig] = []) {
        self.defaultPolicy = defaultPolicy
        self.sourceGroups = sourceGroups
    }
}

/// A population of sources and the rules that apply to it.
public struct SourceGroupConfig: Sendable, Equatable {
    /// Stable identifier, unique within the policy.
    public var id: String
    /// Explicit evaluation priority (lower first); nil falls back to list order.
    public var priority: Int?
    /// The sources this group claims.
    public var sources: SourcesConfig
    /// Rules in document order.
    public var rules: [RuleConfig]
    /// Fallback inside the group when no rule matches; nil lets evaluation fall through.
    public var defaultAction: PolicyAction?
    /// Extension: `audit` turns denies decided inside this group into recorded allows.
    public var mode: RuleMode?

    public init(id: String, priority: Int? = nil, sources: SourcesConfig, rules: [RuleConfig] = [],
                defaultAction: PolicyAction? = nil, mode: RuleMode? = nil) {
        self.id = id
        self.priority = priority
        self.sources = sources
        self.rules = rules
        self.defaultAction = defaultAction
        self.mode = mode
    }
}

/// Static and dynamic source selectors of a group.
public struct SourcesConfig: Sendable, Equatable {
    /// Source prefixes, IPv4 or IPv6.
    public var cidrs: [IPPrefix]
    /// Single source addresses, IPv4 or IPv6.
    public var ips: [IPAddress]
    /// Kubernetes-backed selectors, resolved to addresses by an integration.
    public var kubernetes: [KubernetesSource]

    public init(cidrs: [IPPrefix] = [], ips: [IPAddress] = [], kubernetes: [KubernetesSource] = []) {
        self.cidrs = cidrs
        self.ips = ips
        self.kubernetes = kubernetes
    }
}

/// A Kubernetes selector: the pods or nodes of an integration whose addresses are sources.
public struct KubernetesSource: Sendable, Equatable {
    /// Pods of one namespace, or nodes, selected by labels.
    public enum Selector: Sendable, Equatable {
        case pod(namespace: String, matchLabels: [String: String])
        case node(matchLabels: [String: String])
    }

    /// Name of the Kubernetes integration that resolves this selector.
    public var integration: String
    /// What is selected.
    public var selector: Selector

    public init(integration: String, selector: Selector) {
        self.integration = integration
        self.selector = selector
    }
}

/// One rule: an action, an optional mode and a match block.
public struct RuleConfig: Sendable, Equatable {
    /// Identifier, unique within its source group.
    public var id: String
    /// Explicit evaluation priority within the group (lower first); nil falls back to list order.
    public var priority: Int?
    /// What happens when the rule matches.
    public var action: PolicyAction
    /// `audit` leaves the rule out of the enforce path and records the deny it would produce.
    public var mode: RuleMode?
    /// The selectors; all that are set must match together.
    public var match: RuleMatchConfig

    public init(id: String, priority: Int? = nil, action: PolicyAction, mode: RuleMode? = nil,
                match: RuleMatchConfig = RuleMatchConfig()) {
        self.id = id
        self.priority = priority
        self.action = action
        self.mode = mode
        self.match = match
    }
}

/// The match block of a rule (spec 002, "RuleMatchConfig"). Empty lists mean "any".
public struct RuleMatchConfig: Sendable, Equatable {
    public var dstCidrs: [IPPrefix]
    public var dstIps: [IPAddress]
    /// Hostname pattern for DNS policy; packets then match the addresses learned for it.
    public var dnsHostname: HostnamePattern?
    /// Protocol; nil means any.
    public var proto: ProtoValue?
    public var srcPorts: [PortRange]
    public var dstPorts: [PortRange]
    public var icmpTypes: [UInt8]
    public var icmpCodes: [UInt8]
    public var tls: TlsMatchConfig?

    public init(dstCidrs: [IPPrefix] = [], dstIps: [IPAddress] = [], dnsHostname: HostnamePattern? = nil,
                proto: ProtoValue? = nil, srcPorts: [PortRange] = [], dstPorts: [PortRange] = [],
                icmpTypes: [UInt8] = [], icmpCodes: [UInt8] = [], tls: TlsMatchConfig? = nil) {
        self.dstCidrs = dstCidrs
        self.dstIps = dstIps
        self.dnsHostname = dnsHostname
        self.proto = proto
        self.srcPorts = srcPorts
        self.dstPorts = dstPorts
        self.icmpTypes = icmpTypes
        self.icmpCodes = icmpCodes
        self.tls = tls
    }
}

/// An IP protocol selector: any, or one protocol number (names are sugar for numbers).
public enum ProtoValue: Sendable, Equatable, CustomStringConvertible {
    case any
    case number(UInt8)

    /// Protocol names accepted in policies, with their IANA numbers.
    public static let names: [(name: String, number: UInt8)] = [
        ("icmp", 1), ("igmp", 2), ("tcp", 6), ("udp", 17), ("gre", 47), ("esp", 50), ("ah", 51),
        ("icmpv6", 58), ("sctp", 132),
    ]
    /// Other spellings accepted on input.
    static let aliases: [String: UInt8] = ["ipv6-icmp": 58, "icmp6": 58]

    public static let tcp = ProtoValue.number(6)
    public static let udp = ProtoValue.number(17)
    public static let icmp = ProtoValue.number(1)
    public static let icmpv6 = ProtoValue.number(58)

    /// Parses a protocol name (case-insensitive) or decimal number 0...255; "any" and "*" mean any.
    public init?(name: String) {
        let lower = name.lowercased()
        if lower == "any" || lower == "*" { self = .any; return }
        if let entry = ProtoValue.names.first(where: { $0.name == lower }) { self = .number(entry.number); return }
        if let number = ProtoValue.aliases[lower] { self = .number(number); return }
        if !lower.isEmpty, lower.count <= 3, lower.allSatisfy(\.isNumber), let number = UInt8(lower) {
            self = .number(number)
            return
        }
        return nil
    }

    /// Whether the protocol is ICMP or ICMPv6.
    public var isICMP: Bool { self == .icmp || self == .icmpv6 }

    public var description: String {
        switch self {
        case .any: return "any"
        case .number(let n): return ProtoValue.names.first(where: { $0.number == n })?.name ?? String(n)
        }
    }
}

/// An inclusive port range; a single port is a range of one.
public struct PortRange: Sendable, Hashable, CustomStringConvertible {
    public let lower: UInt16
    public let upper: UInt16

    public init?(_ lower: UInt16, _ upper: UInt16) {
        guard lower <= upper else { return nil }
        self.lower = lower
        self.upper = upper
    }

    public init(port: UInt16) {
        lower = port
        upper = port
    }

    public func contains(_ port: UInt16) -> Bool { lower <= port && port <= upper }

    public var description: String { lower == upper ? String(lower) : "\(lower)-\(upper)" }
}

/// The `tls` block of a rule (spec 002, "TLS Matchers").
public struct TlsMatchConfig: Sendable, Equatable {
    public enum Mode: String, Sendable, Codable {
        /// Match on the handshake as seen on the wire, nothing decrypted.
        case metadata
        /// Decrypting interception (Sluice validates but does not perform it; see docs/policy.md).
        case intercept
    }

    /// nil in the document means `metadata`.
    public var mode: Mode?
    public var sni: TlsNameMatch?
    /// Raw distinguished name, compared after normalisation.
    public var serverDn: String?
    public var serverSan: TlsNameMatch?
    public var serverCn: TlsNameMatch?
    /// Lower-case hex SHA-256 fingerprints of acceptable leaf certificates.
    public var fingerprintSha256: [String]
    /// PEM trust anchors the server chain must verify against.
    public var trustAnchorsPem: [String]
    /// How certificate matchers decide when TLS 1.3 hides the certificate; nil means deny.
    public var tls13Uninspectable: PolicyAction?
    public var http: HttpPolicyConfig?

    public init(mode: Mode? = nil, sni: TlsNameMatch? = nil, serverDn: String? = nil, serverSan: TlsNameMatch? = nil,
                serverCn: TlsNameMatch? = nil, fingerprintSha256: [String] = [], trustAnchorsPem: [String] = [],
                tls13Uninspectable: PolicyAction? = nil, http: HttpPolicyConfig? = nil) {
        self.mode = mode
        self.sni = sni
        self.serverDn = serverDn
        self.serverSan = serverSan
        self.serverCn = serverCn
        self.fingerprintSha256 = fingerprintSha256
        self.trustAnchorsPem = trustAnchorsPem
        self.tls13Uninspectable = tls13Uninspectable
        self.http = http
    }

    /// Whether any matcher needs the server certificate.
    public var needsCertificate: Bool {
        serverDn != nil || serverSan != nil || serverCn != nil || !fingerprintSha256.isEmpty || !trustAnchorsPem.isEmpty
    }
}

/// A TLS name matcher in one of three encodings: a string (a regular expression), a list
/// (exact names) or an object with both. The encoding is kept so that documents round-trip.
public struct TlsNameMatch: Sendable, Equatable {
    public enum Encoding: Sendable, Equatable { case string, list, object }
    /// Exact names, lower-cased.
    public var exact: [String]
    /// A regular expression matched against the whole name.
    public var regex: AnchoredPattern?
    public var encoding: Encoding

    public init(exact: [String] = [], regex: AnchoredPattern? = nil, encoding: Encoding = .object) {
        self.exact = exact
        self.regex = regex
        self.encoding = encoding
    }

    /// Whether `name` (compared case-insensitively, trailing dot ignored) matches.
    public func matches(_ name: String) -> Bool {
        let normal = HostnamePattern.normalize(name)
        return exact.contains(normal) || (regex?.matches(normal) ?? false)
    }
}

/// The `http` block inside `tls` (intercept mode only).
public struct HttpPolicyConfig: Sendable, Equatable {
    public var request: HttpRequestPolicy?
    public var response: HttpResponsePolicy?

    public init(request: HttpRequestPolicy? = nil, response: HttpResponsePolicy? = nil) {
        self.request = request
        self.response = response
    }
}

/// Exact values and/or one regular expression.
public struct StringMatch: Sendable, Equatable {
    public var exact: [String]
    public var regex: AnchoredPattern?

    public init(exact: [String] = [], regex: AnchoredPattern? = nil) {
        self.exact = exact
        self.regex = regex
    }
}

/// Path matcher: exact paths, prefixes and/or one regular expression.
public struct PathMatch: Sendable, Equatable {
    public var exact: [String]
    public var prefix: [String]
    public var regex: AnchoredPattern?

    public init(exact: [String] = [], prefix: [String] = [], regex: AnchoredPattern? = nil) {
        self.exact = exact
        self.prefix = prefix
        self.regex = regex
    }
}

/// Query parameter matchers.
public struct QueryMatch: Sendable, Equatable {
    public var keysPresent: [String]
    public var keyValuesExact: [String: [String]]
    public var keyValuesRegex: [String: AnchoredPattern]

    public init(keysPresent: [String] = [], keyValuesExact: [String: [String]] = [:],
                keyValuesRegex: [String: AnchoredPattern] = [:]) {
        self.keysPresent = keysPresent
        self.keyValuesExact = keyValuesExact
        self.keyValuesRegex = keyValuesRegex
    }
}

/// Header matchers; names are lower-cased.
public struct HeaderMatch: Sendable, Equatable {
    public var requirePresent: [String]
    public var denyPresent: [String]
    public var exact: [String: [String]]
    public var regex: [String: AnchoredPattern]

    public init(requirePresent: [String] = [], denyPresent: [String] = [], exact: [String: [String]] = [:],
                regex: [String: AnchoredPattern] = [:]) {
        self.requirePresent = requirePresent
        self.denyPresent = denyPresent
        self.exact = exact
        self.regex = regex
    }
}

/// HTTP request matchers of intercepted traffic.
public struct HttpRequestPolicy: Sendable, Equatable {
    public var host: StringMatch?
    /// Methods, upper-cased.
    public var methods: [String]
    public var path: PathMatch?
    public var query: QueryMatch?
    public var headers: HeaderMatch?

    public init(host: StringMatch? = nil, methods: [String] = [], path: PathMatch? = nil, query: QueryMatch? = nil,
                headers: HeaderMatch? = nil) {
        self.host = host
        self.methods = methods
        self.path = path
        self.query = query
        self.headers = headers
    }
}

/// HTTP response matchers of intercepted traffic (headers only, as in the spec).
public struct HttpResponsePolicy: Sendable, Equatable {
    public var headers: HeaderMatch?

    public init(headers: HeaderMatch? = nil) { self.headers = headers }
}

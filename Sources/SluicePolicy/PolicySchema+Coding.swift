// JSON encoding of the policy types with the schema's names, and decoding through
// `PolicyParser` so that `JSONDecoder` users get the same checks and messages as the API.
// Encoding then decoding gives back an equal value (a test holds this).
import Foundation

extension PolicyRequest: Codable {
    private enum Keys: String, CodingKey { case mode, name, policy }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(mode, forKey: .mode)
        try container.encodeIfPresent(name, forKey: .name)
        try container.encode(policy, forKey: .policy)
    }

    /// Decodes through `PolicyParser`; a refused document throws `PolicyValidationError`.
    public init(from decoder: any Decoder) throws {
        self = try PolicyParser.parseRequest(try JSONValue(from: decoder)).value
    }
}

extension PolicyConfig: Codable {
    private enum Keys: String, CodingKey { case defaultPolicy = "default_policy", sourceGroups = "source_groups" }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(defaultPolicy, forKey: .defaultPolicy)
        try container.encode(sourceGroups, forKey: .sourceGroups)
    }

    /// Decodes through `PolicyParser`; a refused document throws `PolicyValidationError`.
    public init(from decoder: any Decoder) throws {
        self = try PolicyParser.parseConfig(try JSONValue(from: decoder)).value
    }
}

extension SourceGroupConfig: Encodable {
    private enum Keys: String, CodingKey {
        case id, priority, sources, rules, mode
        case defaultAction = "default_action"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(id, forKey: .id)
        try container.encodeIfPresent(priority, forKey: .priority)
        try container.encode(sources, forKey: .sources)
        try container.encode(rules, forKey: .rules)
        try container.encodeIfPresent(defaultAction, forKey: .defaultAction)
        try container.encodeIfPresent(mode, forKey: .mode)
    }
}

extension SourcesConfig: Encodable {
    private enum Keys: String, CodingKey { case cidrs, ips, kubernetes }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(cidrs.map(\.description), forKey: .cidrs)
        try container.encode(ips.map(\.description), forKey: .ips)
        if !kubernetes.isEmpty { try container.encode(kubernetes, forKey: .kubernetes) }
    }
}

extension KubernetesSource: Encodable {
    private enum Keys: String, CodingKey {
        case integration, namespace
        case podSelector = "pod_selector", nodeSelector = "node_selector", matchLabels = "match_labels"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(integration, forKey: .integration)
        switch selector {
        case .pod(let namespace, let labels):
            var pod = container.nestedContainer(keyedBy: Keys.self, forKey: .podSelector)
            try pod.encode(namespace, forKey: .namespace)
            try pod.encode(labels, forKey: .matchLabels)
        case .node(let labels):
            var node = container.nestedContainer(keyedBy: Keys.self, forKey: .nodeSelector)
            try node.encode(labels, forKey: .matchLabels)
        }
    }
}

extension RuleConfig: Encodable {
    private enum Keys: String, CodingKey { case id, priority, action, mode, match }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(id, forKey: .id)
        try container.encodeIfPresent(priority, forKey: .priority)
        try container.encode(action, forKey: .action)
        try container.encodeIfPresent(mode, forKey: .mode)
        try container.encode(match, forKey: .match)
    }
}

extension RuleMatchConfig: Encodable {
    private enum Keys: String, CodingKey {
        case proto, tls
        case dstCidrs = "dst_cidrs", dstIps = "dst_ips", dnsHostname = "dns_hostname", srcPorts = "src_ports"
        case dstPorts = "dst_ports", icmpTypes = "icmp_types", icmpCodes = "icmp_codes"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        if !dstCidrs.isEmpty { try container.encode(dstCidrs.map(\.description), forKey: .dstCidrs) }
        if !dstIps.isEmpty { try container.encode(dstIps.map(\.description), forKey: .dstIps) }
        try container.encodeIfPresent(dnsHostname?.description, forKey: .dnsHostname)
        try container.encodeIfPresent(proto?.description, forKey: .proto)
        if !srcPorts.isEmpty { try container.encode(srcPorts, forKey: .srcPorts) }
        if !dstPorts.isEmpty { try container.encode(dstPorts, forKey: .dstPorts) }
        if !icmpTypes.isEmpty { try container.encode(icmpTypes, forKey: .icmpTypes) }
        if !icmpCodes.isEmpty { try container.encode(icmpCodes, forKey: .icmpCodes) }
        try container.encodeIfPresent(tls, forKey: .tls)
    }
}

extension PortRange: Encodable {
    /// A single port encodes as a number, a range as `"START-END"`, as the schema shows them.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if lower == upper { try container.encode(lower) } else { try container.encode(description) }
    }
}

extension AnchoredPattern: Encodable {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(source)
    }
}

extension TlsNameMatch: Encodable {
    private enum Keys: String, CodingKey { case exact, regex }

    /// Encodes in the encoding the document used (string, list or object).
    public func encode(to encoder: any Encoder) throws {
        switch encoding {
        case .string where exact.isEmpty && regex != nil:
            var container = encoder.singleValueContainer()
            try container.encode(regex!.source)
        case .list where regex == nil:
            var container = encoder.singleValueContainer()
            try container.encode(exact)
        default:
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(exact, forKey: .exact)
            try container.encodeIfPresent(regex, forKey: .regex)
        }
    }
}

extension TlsMatchConfig: Encodable {
    private enum Keys: String, CodingKey {
        case mode, sni, http
        case serverDn = "server_dn", serverSan = "server_san", serverCn = "server_cn"
        case fingerprintSha256 = "fingerprint_sha256", trustAnchorsPem = "trust_anchors_pem"
        case tls13Uninspectable = "tls13_uninspectable"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(mode, forKey: .mode)
        try container.encodeIfPresent(sni, forKey: .sni)
        try container.encodeIfPresent(serverDn, forKey: .serverDn)
        try container.encodeIfPresent(serverSan, forKey: .serverSan)
        try container.encodeIfPresent(serverCn, forKey: .serverCn)
        if !fingerprintSha256.isEmpty { try container.encode(fingerprintSha256, forKey: .fingerprintSha256) }
        if !trustAnchorsPem.isEmpty { try container.encode(trustAnchorsPem, forKey: .trustAnchorsPem) }
        try container.encodeIfPresent(tls13Uninspectable, forKey: .tls13Uninspectable)
        try container.encodeIfPresent(http, forKey: .http)
    }
}

extension HttpPolicyConfig: Encodable {
    private enum Keys: String, CodingKey { case request, response }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(request, forKey: .request)
        try container.encodeIfPresent(response, forKey: .response)
    }
}

extension StringMatch: Encodable {
    private enum Keys: String, CodingKey { case exact, regex }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(exact, forKey: .exact)
        try container.encodeIfPresent(regex, forKey: .regex)
    }
}

extension PathMatch: Encodable {
    private enum Keys: String, CodingKey { case exact, prefix, regex }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(exact, forKey: .exact)
        try container.encode(prefix, forKey: .prefix)
        try container.encodeIfPresent(regex, forKey: .regex)
    }
}

extension QueryMatch: Encodable {
    private enum Keys: String, CodingKey {
        case keysPresent = "keys_present", keyValuesExact = "key_values_exact", keyValuesRegex = "key_values_regex"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(keysPresent, forKey: .keysPresent)
        try container.encode(keyValuesExact, forKey: .keyValuesExact)
        try container.encode(keyValuesRegex, forKey: .keyValuesRegex)
    }
}

extension HeaderMatch: Encodable {
    private enum Keys: String, CodingKey {
        case exact, regex
        case requirePresent = "require_present", denyPresent = "deny_present"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(requirePresent, forKey: .requirePresent)
        try container.encode(denyPresent, forKey: .denyPresent)
        try container.encode(exact, forKey: .exact)
        try container.encode(regex, forKey: .regex)
    }
}

extension HttpRequestPolicy: Encodable {
    private enum Keys: String, CodingKey { case host, methods, path, query, headers }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(host, forKey: .host)
        try container.encode(methods, forKey: .methods)
        try container.encodeIfPresent(path, forKey: .path)
        try container.encodeIfPresent(query, forKey: .query)
        try container.encodeIfPresent(headers, forKey: .headers)
    }
}

extension HttpResponsePolicy: Encodable {
    private enum Keys: String, CodingKey { case headers }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(headers, forKey: .headers)
    }
}

extension JSONValue: Codable {
    /// Reads any JSON value from a `Decoder` (used when the policy arrives through `JSONDecoder`).
    /// Member order comes from the decoder's dictionary and is not meaningful here.
    public init(from decoder: any Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            var elements: [JSONValue] = []
            while !array.isAtEnd { elements.append(try array.decode(JSONValue.self)) }
            self = .array(elements)
            return
        }
        if let object = try? decoder.container(keyedBy: AnyKey.self) {
            self = .object(try object.allKeys.sorted { $0.stringValue < $1.stringValue }.map {
                ($0.stringValue, try object.decode(JSONValue.self, forKey: $0))
            })
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() { self = .null }
        else if let value = try? single.decode(Bool.self) { self = .bool(value) }
        else if let value = try? single.decode(Int64.self) { self = .int(value) }
        else if let value = try? single.decode(Double.self) { self = .double(value) }
        else { self = .string(try single.decode(String.self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .bool(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .int(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .double(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .string(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .array(let elements):
            var container = encoder.unkeyedContainer()
            for element in elements { try container.encode(element) }
        case .object(let members):
            var container = encoder.container(keyedBy: AnyKey.self)
            for (key, value) in members { try container.encode(value, forKey: AnyKey(stringValue: key)) }
        }
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { return nil }
    }
}

// Turns a JSON tree into a checked `PolicyRequest` or `PolicyConfig`, collecting every problem
// with the JSON path of the offending value: structural ones (wrong type, unknown or missing
// field) and the validation rules of spec 002 and docs/policy.md. Nothing is half-accepted:
// either the whole document is valid or the caller gets the full list of issues.
import Foundation

/// One problem in a policy document.
public struct ValidationIssue: Sendable, Equatable, Codable, CustomStringConvertible {
    /// JSON path of the offending value, relative to the policy object for its fields
    /// (`source_groups[1].rules[0].match.dst_ports[2]`) and the bare field name for the envelope.
    public let path: String
    /// What is wrong, in plain words.
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// A policy document that was refused, with every issue found.
public struct PolicyValidationError: Error, Sendable, CustomStringConvertible {
    public let issues: [ValidationIssue]

    public init(issues: [ValidationIssue]) { self.issues = issues }

    public var description: String {
        "invalid policy (\(issues.count) problem\(issues.count == 1 ? "" : "s")):\n"
            + issues.map { "  \($0)" }.joined(separator: "\n")
    }
}

/// A parsed document and the non-fatal remarks about it.
public struct ParsedPolicy<Value: Sendable>: Sendable {
    public let value: Value
    /// Things that are valid but probably not what the author meant (e.g. HTTP matchers that
    /// Sluice cannot see without decryption).
    public let warnings: [ValidationIssue]
}

/// Walks a `JSONValue` and builds the checked policy types.
public struct PolicyParser {
    private var issues: [ValidationIssue] = []
    private var warnings: [ValidationIssue] = []

    /// Parses the request envelope `{mode, name, policy}`.
    public static func parseRequest(_ json: JSONValue) throws(PolicyValidationError) -> ParsedPolicy<PolicyRequest> {
        var parser = PolicyParser()
        let request = parser.request(json)
        return try parser.finish(request)
    }

    /// Parses a bare `PolicyConfig` object.
    public static func parseConfig(_ json: JSONValue) throws(PolicyValidationError) -> ParsedPolicy<PolicyConfig> {
        var parser = PolicyParser()
        let config = parser.config(json, path: "")
        return try parser.finish(config)
    }

    /// Parses a policy file: the envelope when the top-level object has a `policy` member,
    /// otherwise a bare `PolicyConfig`, which is then taken as an enforced, unnamed policy.
    public static func parseDocument(_ json: JSONValue) throws(PolicyValidationError) -> ParsedPolicy<PolicyRequest> {
        if case .object(let members) = json, members.contains(where: { $0.key == "policy" }) {
            return try parseRequest(json)
        }
        let config = try parseConfig(json)
        return ParsedPolicy(value: PolicyRequest(mode: .enforce, name: nil, policy: config.value), warnings: config.warnings)
    }

    /// Parses JSON bytes holding the envelope; a syntax error is reported as one issue.
    public static func parseRequest(jsonBytes: some Collection<UInt8>) throws(PolicyValidationError)
        -> ParsedPolicy<PolicyRequest>
    {
        let json: JSONValue
        do {
            json = try JSONValue.parse(jsonBytes)
        } catch {
            throw PolicyValidationError(issues: [ValidationIssue(path: "", message: error.description)])
        }
        return try parseRequest(json)
    }

    private func finish<T>(_ value: T?) throws(PolicyValidationError) -> ParsedPolicy<T> {
        guard issues.isEmpty, let value else {
            throw PolicyValidationError(issues: issues.isEmpty
                ? [ValidationIssue(path: "", message: "invalid policy")] : issues)
        }
        return ParsedPolicy(value: value, warnings: warnings)
    }

    // MARK: - Structure helpers

    private mutating func fail(_ path: String, _ message: String) {
        issues.append(ValidationIssue(path: path, message: message))
    }

    private static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The members of an object, with unknown and duplicate keys reported.
    private mutating func object(_ value: JSONValue, _ path: String, allowed: Set<String>) -> [String: JSONValue]? {
        guard case .object(let members) = value else {
            fail(path, "must be an object, not \(value.typeName)")
            return nil
        }
        var result: [String: JSONValue] = [:]
        for (key, member) in members {
            let memberPath = PolicyParser.join(path, key)
            if !allowed.contains(key) {
                fail(memberPath, "unknown field; expected one of: \(allowed.sorted().joined(separator: ", "))")
            } else if result[key] != nil {
                fail(memberPath, "appears more than once")
            } else {
                result[key] = member
            }
        }
        return result
    }

    private mutating func string(_ value: JSONValue, _ path: String) -> String? {
        guard case .string(let text) = value else {
            fail(path, "must be a string, not \(value.typeName)")
            return nil
        }
        return text
    }

    private mutating func nonEmptyString(_ value: JSONValue, _ path: String) -> String? {
        guard let text = string(value, path) else { return nil }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            fail(path, "must not be empty")
            return nil
        }
        return text
    }

    private mutating func integer(_ value: JSONValue, _ path: String) -> Int64? {
        switch value {
        case .int(let number): return number
        case .double(let number) where number.rounded() == number && abs(number) < 9e15: return Int64(number)
        default:
            fail(path, "must be an integer, not \(value.typeName)")
            return nil
        }
    }

    /// Elements of an array; `null` reads as an empty array like an omitted field.
    private mutating func array(_ value: JSONValue?, _ path: String) -> [(JSONValue, String)] {
        switch value {
        case nil, .null?: return []
        case .array(let elements)?: return elements.enumerated().map { ($1, "\(path)[\($0)]") }
        case let other?:
            fail(path, "must be an array, not \(other.typeName)")
            return []
        }
    }

    /// A present, non-null member.
    private func present(_ members: [String: JSONValue], _ key: String) -> JSONValue? {
        guard let value = members[key], value != .null else { return nil }
        return value
    }

    private mutating func enumValue<E: RawRepresentable & CaseIterable>(_ value: JSONValue, _ path: String, _: E.Type)
        -> E? where E.RawValue == String
    {
        guard let text = string(value, path) else { return nil }
        guard let result = E(rawValue: text.lowercased()) else {
            fail(path, "'\(text)' is not one of: \(E.allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        return result
    }

    private mutating func priority(_ members: [String: JSONValue], _ path: String) -> Int? {
        guard let value = present(members, "priority"), let number = integer(value, PolicyParser.join(path, "priority"))
        else { return nil }
        guard number >= Int64(Int32.min), number <= Int64(Int32.max) else {
            fail(PolicyParser.join(path, "priority"), "must fit in a 32-bit signed integer")
            return nil
        }
        return Int(number)
    }

    // MARK: - Envelope and policy

    private mutating func request(_ json: JSONValue) -> PolicyRequest? {
        guard let members = object(json, "", allowed: ["mode", "name", "policy"]) else { return nil }
        var mode: PolicyMode?
        if let value = present(members, "mode") {
            mode = enumValue(value, "mode", PolicyMode.self)
        } else {
            fail("mode", "is required: one of disabled, audit, enforce")
        }
        var name: String?
        if let value = present(members, "name") {
            name = nonEmptyString(value, "name")
            if let text = name, text.utf8.count > 253 || text.contains(where: { $0.isNewline || $0 == "/" }) {
                fail("name", "must be at most 253 bytes without '/' or line breaks (it appears in URLs)")
            }
        }
        guard let policyValue = present(members, "policy") else {
            fail("policy", "is required")
            return nil
        }
        let policy = config(policyValue, path: "")
        guard let mode, let policy else { return nil }
        return PolicyRequest(mode: mode, name: name, policy: policy)
    }

    private mutating func config(_ json: JSONValue, path: String) -> PolicyConfig? {
        guard let members = object(json, path, allowed: ["default_policy", "source_groups"]) else { return nil }
        var result = PolicyConfig()
        if let value = present(members, "default_policy") {
            result.defaultPolicy = enumValue(value, PolicyParser.join(path, "default_policy"), PolicyAction.self)
        }
        var seen: [String: String] = [:]
        for (value, groupPath) in array(members["source_groups"], PolicyParser.join(path, "source_groups")) {
            guard let group = sourceGroup(value, groupPath) else { continue }
            if let first = seen[group.id] {
                fail(PolicyParser.join(groupPath, "id"), "duplicate source group id '\(group.id)' (first at \(first))")
            } else {
                seen[group.id] = groupPath
            }
            result.sourceGroups.append(group)
        }
        return result
    }

    private mutating func sourceGroup(_ json: JSONValue, _ path: String) -> SourceGroupConfig? {
        let allowed: Set = ["id", "priority", "sources", "rules", "default_action", "mode"]
        guard let members = object(json, path, allowed: allowed) else { return nil }
        let id = present(members, "id").flatMap { nonEmptyString($0, PolicyParser.join(path, "id")) }
        if present(members, "id") == nil { fail(PolicyParser.join(path, "id"), "is required") }
        let priority = priority(members, path)
        var sources: SourcesConfig?
        if let value = present(members, "sources") {
            sources = self.sources(value, PolicyParser.join(path, "sources"))
        } else {
            fail(PolicyParser.join(path, "sources"), "is required")
        }
        let defaultAction = present(members, "default_action")
            .flatMap { enumValue($0, PolicyParser.join(path, "default_action"), PolicyAction.self) }
        let mode = present(members, "mode").flatMap { enumValue($0, PolicyParser.join(path, "mode"), RuleMode.self) }
        var rules: [RuleConfig] = []
        var seen: [String: String] = [:]
        for (value, rulePath) in array(members["rules"], PolicyParser.join(path, "rules")) {
            guard let rule = rule(value, rulePath) else { continue }
            if let first = seen[rule.id] {
                fail(PolicyParser.join(rulePath, "id"), "duplicate rule id '\(rule.id)' in this source group (first at \(first))")
            } else {
                seen[rule.id] = rulePath
            }
            rules.append(rule)
        }
        guard let id, let sources else { return nil }
        return SourceGroupConfig(id: id, priority: priority, sources: sources, rules: rules,
                                 defaultAction: defaultAction, mode: mode)
    }

    private mutating func sources(_ json: JSONValue, _ path: String) -> SourcesConfig? {
        guard let members = object(json, path, allowed: ["cidrs", "ips", "kubernetes"]) else { return nil }
        var result = SourcesConfig()
        for (value, itemPath) in array(members["cidrs"], PolicyParser.join(path, "cidrs")) {
            if let prefix = cidr(value, itemPath) { result.cidrs.append(prefix) }
        }
        for (value, itemPath) in array(members["ips"], PolicyParser.join(path, "ips")) {
            if let address = ip(value, itemPath) { result.ips.append(address) }
        }
        for (value, itemPath) in array(members["kubernetes"], PolicyParser.join(path, "kubernetes")) {
            if let source = kubernetes(value, itemPath) { result.kubernetes.append(source) }
        }
        let written = [members["cidrs"], members["ips"], members["kubernetes"]].contains { value in
            if case .array(let elements)? = value { return !elements.isEmpty }
            return false
        }
        if !written {
            fail(path, "the effective source set is empty: give at least one of cidrs, ips or kubernetes")
        }
        return result
    }

    private mutating func kubernetes(_ json: JSONValue, _ path: String) -> KubernetesSource? {
        guard let members = object(json, path, allowed: ["integration", "pod_selector", "node_selector"]) else {
            return nil
        }
        var integration: String?
        if let value = present(members, "integration") {
            integration = nonEmptyString(value, PolicyParser.join(path, "integration"))
        } else {
            fail(PolicyParser.join(path, "integration"), "is required: the name of a Kubernetes integration")
        }
        let pod = present(members, "pod_selector")
        let node = present(members, "node_selector")
        var selector: KubernetesSource.Selector?
        switch (pod, node) {
        case (let pod?, nil):
            let podPath = PolicyParser.join(path, "pod_selector")
            if let fields = object(pod, podPath, allowed: ["namespace", "match_labels"]) {
                let namespace = present(fields, "namespace").flatMap { nonEmptyString($0, PolicyParser.join(podPath, "namespace")) }
                if present(fields, "namespace") == nil { fail(PolicyParser.join(podPath, "namespace"), "is required") }
                let labels = self.labels(fields["match_labels"], PolicyParser.join(podPath, "match_labels"))
                if let namespace, let labels { selector = .pod(namespace: namespace, matchLabels: labels) }
            }
        case (nil, let node?):
            let nodePath = PolicyParser.join(path, "node_selector")
            if let fields = object(node, nodePath, allowed: ["match_labels"]),
               let labels = self.labels(fields["match_labels"], PolicyParser.join(nodePath, "match_labels")) {
                selector = .node(matchLabels: labels)
            }
        default:
            fail(path, "set exactly one of pod_selector or node_selector")
        }
        guard let integration, let selector else { return nil }
        return KubernetesSource(integration: integration, selector: selector)
    }

    private mutating func labels(_ json: JSONValue?, _ path: String) -> [String: String]? {
        guard let json, json != .null else { return [:] }
        guard case .object(let members) = json else {
            fail(path, "must be an object of label names to values, not \(json.typeName)")
            return nil
        }
        var result: [String: String] = [:]
        for (key, value) in members {
            if let text = string(value, PolicyParser.join(path, key)) { result[key] = text }
        }
        return result
    }

    private mutating func cidr(_ value: JSONValue, _ path: String) -> IPPrefix? {
        guard let text = string(value, path) else { return nil }
        switch IPPrefix.parse(text) {
        case .success(let prefix): return prefix
        case .failure(let error):
            fail(path, "'\(text)' \(error)")
            return nil
        }
    }

    private mutating func ip(_ value: JSONValue, _ path: String) -> IPAddress? {
        guard let text = string(value, path) else { return nil }
        guard let address = IPAddress(text) else {
            fail(path, "'\(text)' is not an IPv4 or IPv6 address")
            return nil
        }
        return address
    }

    // MARK: - Rules

    private mutating func rule(_ json: JSONValue, _ path: String) -> RuleConfig? {
        guard let members = object(json, path, allowed: ["id", "priority", "action", "mode", "match"]) else { return nil }
        let id = present(members, "id").flatMap { nonEmptyString($0, PolicyParser.join(path, "id")) }
        if present(members, "id") == nil { fail(PolicyParser.join(path, "id"), "is required") }
        let priority = priority(members, path)
        var action: PolicyAction?
        if let value = present(members, "action") {
            action = enumValue(value, PolicyParser.join(path, "action"), PolicyAction.self)
        } else {
            fail(PolicyParser.join(path, "action"), "is required: allow or deny")
        }
        let mode = present(members, "mode").flatMap { enumValue($0, PolicyParser.join(path, "mode"), RuleMode.self) }
        var match: RuleMatchConfig?
        if let value = present(members, "match") {
            match = self.match(value, PolicyParser.join(path, "match"))
        } else {
            fail(PolicyParser.join(path, "match"), "is required (use {} to match everything)")
        }
        guard let id, let action, let match else { return nil }
        return RuleConfig(id: id, priority: priority, action: action, mode: mode, match: match)
    }

    private mutating func match(_ json: JSONValue, _ path: String) -> RuleMatchConfig? {
        let allowed: Set = ["dst_cidrs", "dst_ips", "dns_hostname", "proto", "src_ports", "dst_ports",
                            "icmp_types", "icmp_codes", "tls"]
        guard let members = object(json, path, allowed: allowed) else { return nil }
        let at = { PolicyParser.join(path, $0) }
        var result = RuleMatchConfig()
        var ok = true
        for (value, itemPath) in array(members["dst_cidrs"], at("dst_cidrs")) {
            if let prefix = cidr(value, itemPath) { result.dstCidrs.append(prefix) } else { ok = false }
        }
        for (value, itemPath) in array(members["dst_ips"], at("dst_ips")) {
            if let address = ip(value, itemPath) { result.dstIps.append(address) } else { ok = false }
        }
        if let value = present(members, "dns_hostname"), let text = string(value, at("dns_hostname")) {
            do {
                result.dnsHostname = try HostnamePattern(text)
            } catch {
                fail(at("dns_hostname"), error.description)
                ok = false
            }
        }
        if let value = present(members, "proto") {
            result.proto = proto(value, at("proto"))
            if result.proto == nil { ok = false }
        }
        for (value, itemPath) in array(members["src_ports"], at("src_ports")) {
            if let range = port(value, itemPath) { result.srcPorts.append(range) } else { ok = false }
        }
        for (value, itemPath) in array(members["dst_ports"], at("dst_ports")) {
            if let range = port(value, itemPath) { result.dstPorts.append(range) } else { ok = false }
        }
        for (value, itemPath) in array(members["icmp_types"], at("icmp_types")) {
            if let byte = icmpField(value, itemPath) { result.icmpTypes.append(byte) } else { ok = false }
        }
        for (value, itemPath) in array(members["icmp_codes"], at("icmp_codes")) {
            if let byte = icmpField(value, itemPath) { result.icmpCodes.append(byte) } else { ok = false }
        }
        if let value = present(members, "tls") {
            result.tls = tls(value, at("tls"))
            if result.tls == nil { ok = false }
        }

        // Cross-field rules of spec 002 ("Validation semantics"), checked on what did parse.
        let proto = result.proto ?? .any
        let portless = proto != .any && proto != .tcp && proto != .udp && proto != .number(132)
        if proto.isICMP {
            if !result.srcPorts.isEmpty { fail(at("src_ports"), "ICMP rules cannot use port filters"); ok = false }
            if !result.dstPorts.isEmpty { fail(at("dst_ports"), "ICMP rules cannot use port filters"); ok = false }
        } else if portless, !result.srcPorts.isEmpty || !result.dstPorts.isEmpty {
            fail(at(result.srcPorts.isEmpty ? "dst_ports" : "src_ports"),
                 "port filters need proto tcp, udp, sctp or any, not \(proto)")
            ok = false
        }
        if proto != .any && !proto.isICMP {
            if !result.icmpTypes.isEmpty { fail(at("icmp_types"), "ICMP filters need proto icmp, icmpv6 or any"); ok = false }
            if !result.icmpCodes.isEmpty { fail(at("icmp_codes"), "ICMP filters need proto icmp, icmpv6 or any"); ok = false }
        }
        if result.tls != nil, proto != .any, proto != .tcp {
            fail(at("tls"), "TLS matchers need proto tcp or any, not \(proto)")
            ok = false
        }
        return ok ? result : nil
    }

    private mutating func proto(_ value: JSONValue, _ path: String) -> ProtoValue? {
        switch value {
        case .string(let text):
            guard let proto = ProtoValue(name: text) else {
                let names = ProtoValue.names.map(\.name).joined(separator: ", ")
                fail(path, "'\(text)' is not a protocol; use any, \(names), or a number 0-255")
                return nil
            }
            return proto
        case .int, .double:
            guard let number = integer(value, path) else { return nil }
            guard (0...255).contains(number) else {
                fail(path, "protocol number \(number) is outside 0-255")
                return nil
            }
            return .number(UInt8(number))
        default:
            fail(path, "must be a protocol name or number, not \(value.typeName)")
            return nil
        }
    }

    private mutating func port(_ value: JSONValue, _ path: String) -> PortRange? {
        func portNumber(_ number: Int64, _ text: String) -> UInt16? {
            guard (0...65535).contains(number) else {
                fail(path, "port \(text) is outside 0-65535")
                return nil
            }
            return UInt16(number)
        }
        switch value {
        case .int, .double:
            guard let number = integer(value, path), let port = portNumber(number, String(number)) else { return nil }
            return PortRange(port: port)
        case .string(let text):
            let parts = text.split(separator: "-", omittingEmptySubsequences: false)
            let numbers = parts.map { part -> Int64? in
                let trimmed = part.trimmingCharacters(in: .whitespaces)
                guard !trimmed.isEmpty, trimmed.count <= 6, trimmed.allSatisfy(\.isNumber) else { return nil }
                return Int64(trimmed)
            }
            guard (1...2).contains(parts.count), numbers.allSatisfy({ $0 != nil }) else {
                fail(path, "'\(text)' is not a port or a range like \"1024-65535\"")
                return nil
            }
            guard let low = portNumber(numbers[0]!, String(numbers[0]!)),
                  let high = portNumber(numbers[numbers.count - 1]!, String(numbers[numbers.count - 1]!)) else {
                return nil
            }
            guard let range = PortRange(low, high) else {
                fail(path, "range '\(text)' starts after it ends")
                return nil
            }
            return range
        default:
            fail(path, "must be a port number or a \"START-END\" string, not \(value.typeName)")
            return nil
        }
    }

    private mutating func icmpField(_ value: JSONValue, _ path: String) -> UInt8? {
        guard let number = integer(value, path) else { return nil }
        guard (0...255).contains(number) else {
            fail(path, "\(number) is outside 0-255")
            return nil
        }
        return UInt8(number)
    }

    // MARK: - TLS and HTTP

    private mutating func tls(_ json: JSONValue, _ path: String) -> TlsMatchConfig? {
        let allowed: Set = ["mode", "sni", "server_dn", "server_san", "server_cn", "fingerprint_sha256",
                            "trust_anchors_pem", "tls13_uninspectable", "http"]
        guard let members = object(json, path, allowed: allowed) else { return nil }
        let at = { PolicyParser.join(path, $0) }
        let before = issues.count
        var result = TlsMatchConfig()
        if let value = present(members, "mode"), let text = string(value, at("mode")) {
            result.mode = TlsMatchConfig.Mode(rawValue: text.lowercased())
            if result.mode == nil { fail(at("mode"), "'\(text)' is not one of: metadata, intercept") }
        }
        result.sni = present(members, "sni").flatMap { nameMatch($0, at("sni")) }
        result.serverSan = present(members, "server_san").flatMap { nameMatch($0, at("server_san")) }
        result.serverCn = present(members, "server_cn").flatMap { nameMatch($0, at("server_cn")) }
        result.serverDn = present(members, "server_dn").flatMap { nonEmptyString($0, at("server_dn")) }
        for (value, itemPath) in array(members["fingerprint_sha256"], at("fingerprint_sha256")) {
            guard let text = string(value, itemPath) else { continue }
            let hex = text.lowercased().filter { $0 != ":" }
            if hex.count == 64, hex.allSatisfy(\.isHexDigit) {
                result.fingerprintSha256.append(hex)
            } else {
                fail(itemPath, "'\(text)' is not a SHA-256 fingerprint (64 hex digits, colons allowed)")
            }
        }
        for (value, itemPath) in array(members["trust_anchors_pem"], at("trust_anchors_pem")) {
            guard let text = string(value, itemPath) else { continue }
            if let problem = PolicyParser.pemProblem(text) { fail(itemPath, problem) } else { result.trustAnchorsPem.append(text) }
        }
        if let value = present(members, "tls13_uninspectable") {
            result.tls13Uninspectable = enumValue(value, at("tls13_uninspectable"), PolicyAction.self)
        }
        if let value = present(members, "http") {
            result.http = http(value, at("http"))
        }
        let mode = result.mode ?? .metadata
        if mode == .metadata, present(members, "http") != nil {
            fail(at("http"), "HTTP matchers need tls.mode intercept")
        }
        if mode == .intercept {
            if present(members, "http") == nil {
                fail(at("mode"), "intercept mode needs an http block")
            } else {
                warnings.append(ValidationIssue(path: at("mode"), message: "Sluice does not decrypt TLS: HTTP matchers "
                    + "are never satisfied on the wire, so this rule never matches (see docs/policy.md)"))
            }
        }
        return issues.count == before ? result : nil
    }

    private mutating func nameMatch(_ json: JSONValue, _ path: String) -> TlsNameMatch? {
        switch json {
        case .string(let text):
            guard let regex = pattern(text, path) else { return nil }
            return TlsNameMatch(regex: regex, encoding: .string)
        case .array:
            var names: [String] = []
            for (value, itemPath) in array(json, path) {
                if let name = nonEmptyString(value, itemPath) { names.append(HostnamePattern.normalize(name)) }
            }
            return TlsNameMatch(exact: names, encoding: .list)
        case .object:
            guard let members = object(json, path, allowed: ["exact", "regex"]) else { return nil }
            var result = TlsNameMatch(encoding: .object)
            for (value, itemPath) in array(members["exact"], PolicyParser.join(path, "exact")) {
                if let name = nonEmptyString(value, itemPath) { result.exact.append(HostnamePattern.normalize(name)) }
            }
            if let value = present(members, "regex"), let text = string(value, PolicyParser.join(path, "regex")) {
                result.regex = pattern(text, PolicyParser.join(path, "regex"))
            }
            if result.exact.isEmpty && result.regex == nil && present(members, "regex") == nil {
                fail(path, "give exact names, a regex, or both")
            }
            return result
        default:
            fail(path, "must be a regex string, a list of names, or {exact, regex}, not \(json.typeName)")
            return nil
        }
    }

    private mutating func pattern(_ text: String, _ path: String) -> AnchoredPattern? {
        do {
            return try AnchoredPattern(text)
        } catch {
            fail(path, "'\(text)' is not a valid regular expression: \(error)")
            return nil
        }
    }

    private mutating func stringList(_ value: JSONValue?, _ path: String) -> [String] {
        array(value, path).compactMap { nonEmptyString($0.0, $0.1) }
    }

    private mutating func stringMatch(_ json: JSONValue, _ path: String) -> StringMatch? {
        guard let members = object(json, path, allowed: ["exact", "regex"]) else { return nil }
        var result = StringMatch(exact: stringList(members["exact"], PolicyParser.join(path, "exact")))
        if let value = present(members, "regex"), let text = string(value, PolicyParser.join(path, "regex")) {
            result.regex = pattern(text, PolicyParser.join(path, "regex"))
        }
        return result
    }

    private mutating func valueLists(_ json: JSONValue?, _ path: String, lowercaseKeys: Bool) -> [String: [String]] {
        guard let json, json != .null else { return [:] }
        guard case .object(let members) = json else {
            fail(path, "must be an object of names to lists of values, not \(json.typeName)")
            return [:]
        }
        var result: [String: [String]] = [:]
        for (key, value) in members {
            result[lowercaseKeys ? key.lowercased() : key] = stringList(value, PolicyParser.join(path, key))
        }
        return result
    }

    private mutating func patternMap(_ json: JSONValue?, _ path: String, lowercaseKeys: Bool) -> [String: AnchoredPattern] {
        guard let json, json != .null else { return [:] }
        guard case .object(let members) = json else {
            fail(path, "must be an object of names to regular expressions, not \(json.typeName)")
            return [:]
        }
        var result: [String: AnchoredPattern] = [:]
        for (key, value) in members {
            let itemPath = PolicyParser.join(path, key)
            if let text = string(value, itemPath), let regex = pattern(text, itemPath) {
                result[lowercaseKeys ? key.lowercased() : key] = regex
            }
        }
        return result
    }

    private mutating func headers(_ json: JSONValue, _ path: String) -> HeaderMatch? {
        guard let members = object(json, path, allowed: ["require_present", "deny_present", "exact", "regex"]) else {
            return nil
        }
        let at = { PolicyParser.join(path, $0) }
        return HeaderMatch(requirePresent: stringList(members["require_present"], at("require_present")).map { $0.lowercased() },
                           denyPresent: stringList(members["deny_present"], at("deny_present")).map { $0.lowercased() },
                           exact: valueLists(members["exact"], at("exact"), lowercaseKeys: true),
                           regex: patternMap(members["regex"], at("regex"), lowercaseKeys: true))
    }

    private mutating func http(_ json: JSONValue, _ path: String) -> HttpPolicyConfig? {
        guard let members = object(json, path, allowed: ["request", "response"]) else { return nil }
        var result = HttpPolicyConfig()
        if let value = present(members, "request") {
            let requestPath = PolicyParser.join(path, "request")
            let at = { PolicyParser.join(requestPath, $0) }
            if let fields = object(value, requestPath, allowed: ["host", "methods", "path", "query", "headers"]) {
                var request = HttpRequestPolicy()
                request.host = present(fields, "host").flatMap { stringMatch($0, at("host")) }
                for (item, itemPath) in array(fields["methods"], at("methods")) {
                    guard let method = nonEmptyString(item, itemPath) else { continue }
                    if method.allSatisfy({ $0.isASCII && ($0.isLetter || $0 == "-") }) {
                        request.methods.append(method.uppercased())
                    } else {
                        fail(itemPath, "'\(method)' is not an HTTP method")
                    }
                }
                if let pathValue = present(fields, "path"),
                   let members = object(pathValue, at("path"), allowed: ["exact", "prefix", "regex"]) {
                    var match = PathMatch(exact: stringList(members["exact"], PolicyParser.join(at("path"), "exact")),
                                          prefix: stringList(members["prefix"], PolicyParser.join(at("path"), "prefix")))
                    if let regexValue = present(members, "regex"),
                       let text = string(regexValue, PolicyParser.join(at("path"), "regex")) {
                        match.regex = pattern(text, PolicyParser.join(at("path"), "regex"))
                    }
                    request.path = match
                }
                if let queryValue = present(fields, "query"),
                   let members = object(queryValue, at("query"), allowed: ["keys_present", "key_values_exact", "key_values_regex"]) {
                    let q = { PolicyParser.join(at("query"), $0) }
                    request.query = QueryMatch(keysPresent: stringList(members["keys_present"], q("keys_present")),
                                               keyValuesExact: valueLists(members["key_values_exact"], q("key_values_exact"),
                                                                          lowercaseKeys: false),
                                               keyValuesRegex: patternMap(members["key_values_regex"], q("key_values_regex"),
                                                                          lowercaseKeys: false))
                }
                request.headers = present(fields, "headers").flatMap { headers($0, at("headers")) }
                result.request = request
            }
        }
        if let value = present(members, "response") {
            let responsePath = PolicyParser.join(path, "response")
            if let fields = object(value, responsePath, allowed: ["headers"]) {
                result.response = HttpResponsePolicy(
                    headers: present(fields, "headers").flatMap { headers($0, PolicyParser.join(responsePath, "headers")) })
            }
        }
        if present(members, "request") == nil && present(members, "response") == nil {
            fail(path, "set at least one of request or response")
        }
        return result
    }

    /// Checks that a string holds one or more PEM certificates with base64 DER bodies.
    static func pemProblem(_ text: String) -> String? {
        let begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----"
        var rest = Substring(text)
        var count = 0
        while let start = rest.range(of: begin) {
            guard let stop = rest.range(of: end, range: start.upperBound..<rest.endIndex) else {
                return "PEM certificate has no '\(end)' line"
            }
            let body = rest[start.upperBound..<stop.lowerBound].filter { !$0.isWhitespace }
            guard let der = Data(base64Encoded: String(body)), der.first == 0x30, der.count > 16 else {
                return "PEM certificate body is not base64-encoded DER"
            }
            count += 1
            rest = rest[stop.upperBound...]
        }
        return count == 0 ? "is not a PEM certificate (expected '\(begin)')" : nil
    }
}

// The schema of spec 002_eb952a1ed75b84b3.txt: every field decodes with its JSON name, the
// untagged unions in all encodings, round trips, and every validation rule with its path.
import Foundation
import Testing
@testable import SluicePolicy

func parse(_ json: String) throws(PolicyValidationError) -> PolicyRequest {
    try PolicyParser.parseRequest(jsonBytes: Array(json.utf8)).value
}

/// The issues a document produces, as "path: message" lines.
func issues(_ json: String) -> [ValidationIssue] {
    do {
        _ = try parse(json)
        return []
    } catch {
        return error.issues
    }
}

/// Wraps one rule's match block into a full envelope.
func envelope(match: String, extraRule: String = "", group: String = "") -> String {
    """
    {"mode": "enforce", "name": "t", "policy": {"default_policy": "deny", "source_groups": [
      {"id": "g", "sources": {"cidrs": ["10.0.0.0/8"]}, "rules": [
        {"id": "r", "action": "allow", "match": \(match)}\(extraRule)
      ]\(group)}
    ]}}
    """
}

@Suite struct PolicyParserTests {
    /// Every field of the schema document at once, with the examples it shows.
    static let fullDocument = """
    {
      "mode": "audit",
      "name": "office-egress",
      "policy": {
        "default_policy": "deny",
        "source_groups": [
          {
            "id": "branch-office",
            "priority": 100,
            "mode": "enforce",
            "sources": {
              "cidrs": ["10.10.0.0/16", "fd00:10::/64"],
              "ips": ["10.10.1.20", "fd00:10::20"],
              "kubernetes": [
                {"integration": "cluster-a", "pod_selector": {"namespace": "payments", "match_labels": {"app": "api"}}},
                {"integration": "cluster-a", "node_selector": {"match_labels": {"topology.kubernetes.io/zone": "eu-central-1a"}}}
              ]
            },
            "rules": [
              {"id": "allow-dns", "priority": 10, "action": "allow", "mode": "enforce",
               "match": {"proto": "udp", "dst_ports": [53]}},
              {"id": "web", "action": "allow",
               "match": {"dst_cidrs": ["203.0.113.0/24"], "dst_ips": ["203.0.113.20"], "dns_hostname": "*.example.com",
                         "proto": "tcp", "src_ports": ["1024-65535"], "dst_ports": [443, "8443", "10000-10100"],
                         "icmp_types": [], "icmp_codes": [],
                         "tls": {"mode": "metadata", "sni": {"exact": ["api.example.com"]}}}},
              {"id": "tls-everything", "action": "allow",
               "match": {"proto": 6, "tls": {
                 "mode": "intercept",
                 "sni": {"exact": ["api.example.com"], "regex": ".*\\\\.example\\\\.com"},
                 "server_dn": "CN=api.example.com,O=Example Corp",
                 "server_san": ["api.example.com", "www.example.com"],
                 "server_cn": "api\\\\.example\\\\.com",
                 "fingerprint_sha256": ["0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"],
                 "tls13_uninspectable": "deny",
                 "http": {
                   "request": {
                     "host": {"exact": ["api.example.com"]},
                     "methods": ["get", "POST"],
                     "path": {"prefix": ["/v1/"], "exact": ["/health"], "regex": "/v[0-9]+/.*"},
                     "query": {"keys_present": ["tenant"], "key_values_exact": {"env": ["prod"]},
                               "key_values_regex": {"id": "[0-9]+"}},
                     "headers": {"require_present": ["x-request-id"], "deny_present": ["x-debug"],
                                 "exact": {"x-env": ["prod"]}, "regex": {"x-trace": "[a-f0-9]+"}}
                   },
                   "response": {"headers": {"deny_present": ["set-cookie"]}}
                 }}}},
              {"id": "ping", "action": "allow", "match": {"proto": "icmp", "icmp_types": [8], "icmp_codes": [0]}}
            ],
            "default_action": "deny"
          },
          {"id": "lab", "sources": {"cidrs": ["192.168.0.0/16"]}}
        ]
      }
    }
    """

    @Test func decodesEveryFieldOfTheSchema() throws {
        let request = try parse(PolicyParserTests.fullDocument)
        #expect(request.mode == .audit)
        #expect(request.name == "office-egress")
        let group = request.policy.sourceGroups[0]
        #expect(request.policy.defaultPolicy == .deny)
        #expect(group.id == "branch-office" && group.priority == 100 && group.defaultAction == .deny && group.mode == .enforce)
        #expect(group.sources.cidrs.map(\.description) == ["10.10.0.0/16", "fd00:10::/64"])
        #expect(group.sources.ips.map(\.description) == ["10.10.1.20", "fd00:10::20"])
        #expect(group.sources.kubernetes[0].selector == .pod(namespace: "payments", matchLabels: ["app": "api"]))
        #expect(group.sources.kubernetes[1].selector == .node(matchLabels: ["topology.kubernetes.io/zone": "eu-central-1a"]))
        let web = group.rules[1].match
        #expect(web.proto == .tcp)
        #expect(web.srcPorts == [PortRange(1024, 65535)!])
        #expect(web.dstPorts == [PortRange(port: 443), PortRange(port: 8443), PortRange(10000, 10100)!])
        #expect(web.dnsHostname == .subdomains(of: "example.com", source: "*.example.com"))
        #expect(web.tls?.sni?.exact == ["api.example.com"])
        let tls = try #require(group.rules[2].match.tls)
        #expect(group.rules[2].match.proto == .tcp)
        #expect(tls.mode == .intercept && tls.serverDn == "CN=api.example.com,O=Example Corp")
        #expect(tls.sni?.regex?.source == ".*\\.example\\.com" && tls.sni?.encoding == .object)
        #expect(tls.serverSan?.exact == ["api.example.com", "www.example.com"] && tls.serverSan?.encoding == .list)
        #expect(tls.serverCn?.regex?.source == "api\\.example\\.com" && tls.serverCn?.encoding == .string)
        #expect(tls.tls13Uninspectable == .deny)
        #expect(tls.http?.request?.methods == ["GET", "POST"])
        #expect(tls.http?.request?.query?.keyValuesExact == ["env": ["prod"]])
        #expect(tls.http?.response?.headers?.denyPresent == ["set-cookie"])
        #expect(group.rules[3].match.icmpTypes == [8] && group.rules[3].match.icmpCodes == [0])
        let lab = request.policy.sourceGroups[1]
        #expect(lab.rules.isEmpty && lab.priority == nil && lab.defaultAction == nil)
    }

    @Test func interceptWithHttpIsAcceptedWithAWarning() throws {
        let parsed = try PolicyParser.parseRequest(jsonBytes: Array(PolicyParserTests.fullDocument.utf8))
        #expect(parsed.warnings.map(\.path) == ["source_groups[0].rules[2].match.tls.mode"])
    }

    @Test func encodingRoundTrips() throws {
        let request = try parse(PolicyParserTests.fullDocument)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(request)
        let again = try PolicyParser.parseRequest(jsonBytes: Array(data)).value
        #expect(again == request)
        #expect(try JSONDecoder().decode(PolicyRequest.self, from: data) == request)
        // And the encoded form is stable: a second round gives the same bytes.
        #expect(try encoder.encode(again) == data)
    }

    @Test func omittedArraysAreEmptyAndBareConfigsParse() throws {
        let parsed = try PolicyParser.parseDocument(try JSONValue.parse(Array("""
        {"source_groups": [{"id": "a", "sources": {"ips": ["10.0.0.1"]}}]}
        """.utf8)))
        #expect(parsed.value.mode == .enforce)
        #expect(parsed.value.policy.defaultPolicy == nil)
        #expect(parsed.value.policy.sourceGroups[0].rules.isEmpty)
        #expect(parsed.value.policy.sourceGroups[0].sources.cidrs.isEmpty)
        let empty = try parse(#"{"mode": "disabled", "policy": {}}"#)
        #expect(empty.policy.sourceGroups.isEmpty && empty.name == nil)
    }

    @Test func protoAndPortsInEveryEncoding() throws {
        for (text, expected) in [("\"tcp\"", ProtoValue.tcp), ("6", .tcp), ("\"UDP\"", .udp), ("17", .udp),
                                 ("\"icmp\"", .icmp), ("\"any\"", .any), ("47", .number(47)), ("\"132\"", .number(132))] {
            let request = try parse(envelope(match: "{\"proto\": \(text)}"))
            #expect(request.policy.sourceGroups[0].rules[0].match.proto == expected, "proto \(text)")
        }
    }

    @Test(arguments: [
        // (match block, path of the issue, a fragment of the message)
        (#"{"dst_ports": [70000]}"#, "source_groups[0].rules[0].match.dst_ports[0]", "outside 0-65535"),
        (#"{"dst_ports": [80, 443, "90-80"]}"#, "source_groups[0].rules[0].match.dst_ports[2]", "starts after it ends"),
        (#"{"dst_ports": ["1-70000"]}"#, "source_groups[0].rules[0].match.dst_ports[0]", "outside 0-65535"),
        (#"{"dst_ports": ["http"]}"#, "source_groups[0].rules[0].match.dst_ports[0]", "not a port"),
        (#"{"dst_ports": [44.5]}"#, "source_groups[0].rules[0].match.dst_ports[0]", "integer"),
        (#"{"src_ports": [true]}"#, "source_groups[0].rules[0].match.src_ports[0]", "port number"),
        (#"{"dst_cidrs": ["10.0.0.0/33"]}"#, "source_groups[0].rules[0].match.dst_cidrs[0]", "not a CIDR"),
        (#"{"dst_cidrs": ["10.1.2.3/16"]}"#, "source_groups[0].rules[0].match.dst_cidrs[0]", "host bits"),
        (#"{"dst_ips": ["300.1.1.1"]}"#, "source_groups[0].rules[0].match.dst_ips[0]", "not an IPv4 or IPv6"),
        (#"{"proto": "tcpp"}"#, "source_groups[0].rules[0].match.proto", "not a protocol"),
        (#"{"proto": 256}"#, "source_groups[0].rules[0].match.proto", "outside 0-255"),
        (#"{"proto": "udp", "tls": {"sni": ["a.example"]}}"#, "source_groups[0].rules[0].match.tls", "need proto tcp or any"),
        (#"{"proto": "tcp", "icmp_types": [8]}"#, "source_groups[0].rules[0].match.icmp_types", "need proto icmp"),
        (#"{"proto": "udp", "icmp_codes": [0]}"#, "source_groups[0].rules[0].match.icmp_codes", "need proto icmp"),
        (#"{"proto": "icmp", "dst_ports": [80]}"#, "source_groups[0].rules[0].match.dst_ports", "cannot use port"),
        (#"{"proto": "icmp", "src_ports": [80]}"#, "source_groups[0].rules[0].match.src_ports", "cannot use port"),
        (#"{"proto": "gre", "dst_ports": [80]}"#, "source_groups[0].rules[0].match.dst_ports", "need proto tcp"),
        (#"{"icmp_types": [300]}"#, "source_groups[0].rules[0].match.icmp_types[0]", "outside 0-255"),
        (#"{"dns_hostname": "(unclosed"}"#, "source_groups[0].rules[0].match.dns_hostname", "regular expression"),
        (#"{"dns_hostname": ""}"#, "source_groups[0].rules[0].match.dns_hostname", "empty"),
        (#"{"tls": {"sni": "(["}}"#, "source_groups[0].rules[0].match.tls.sni", "regular expression"),
        (#"{"tls": {"fingerprint_sha256": ["abc"]}}"#, "source_groups[0].rules[0].match.tls.fingerprint_sha256[0]",
         "SHA-256"),
        (#"{"tls": {"trust_anchors_pem": ["hello"]}}"#, "source_groups[0].rules[0].match.tls.trust_anchors_pem[0]", "PEM"),
        (#"{"tls": {"trust_anchors_pem": ["-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"]}}"#,
         "source_groups[0].rules[0].match.tls.trust_anchors_pem[0]", "base64"),
        (#"{"tls": {"mode": "metadata", "http": {"request": {"methods": ["GET"]}}}}"#,
         "source_groups[0].rules[0].match.tls.http", "intercept"),
        (#"{"tls": {"mode": "intercept"}}"#, "source_groups[0].rules[0].match.tls.mode", "needs an http block"),
        (#"{"tls": {"mode": "intercept", "http": {}}}"#, "source_groups[0].rules[0].match.tls.http", "request or response"),
        (#"{"tls": {"mode": "snoop"}}"#, "source_groups[0].rules[0].match.tls.mode", "not one of"),
        (#"{"tls": {"tls13_uninspectable": "maybe"}}"#, "source_groups[0].rules[0].match.tls.tls13_uninspectable",
         "not one of"),
        (#"{"dst_port": [80]}"#, "source_groups[0].rules[0].match.dst_port", "unknown field"),
        (#"{"tls": {"sni": ["a"], "snii": 1}}"#, "source_groups[0].rules[0].match.tls.snii", "unknown field"),
        (#"[]"#, "source_groups[0].rules[0].match", "must be an object"),
    ])
    func reportsEachProblemWithItsPath(match: String, path: String, message: String) {
        let found = issues(envelope(match: match))
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.path == path)
        #expect(found.first?.message.contains(message) == true, "\(found.first?.message ?? "none")")
    }

    @Test func groupAndEnvelopeProblems() {
        let cases: [(String, [String])] = [
            (#"{"mode": "enforced", "policy": {}}"#, ["mode"]),
            (#"{"policy": {}}"#, ["mode"]),
            (#"{"mode": "audit"}"#, ["policy"]),
            (#"{"mode": "audit", "policy": {}, "extra": 1}"#, ["extra"]),
            (#"{"mode": "audit", "policy": {"default_policy": "reject"}}"#, ["default_policy"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"id": "a", "sources": {}}]}}"#, ["source_groups[0].sources"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"id": "a", "sources": {"cidrs": []}}]}}"#,
             ["source_groups[0].sources"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"id": "", "sources": {"ips": ["1.1.1.1"]}}]}}"#,
             ["source_groups[0].id"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"sources": {"ips": ["1.1.1.1"]}}]}}"#, ["source_groups[0].id"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"id": "a"}]}}"#, ["source_groups[0].sources"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"id": "a", "sources": {"ips": ["1.1.1.1"]}},"#
                + #"{"id": "a", "sources": {"ips": ["1.1.1.2"]}}]}}"#, ["source_groups[1].id"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"id": "a", "mode": "off", "sources": {"ips": ["1.1.1.1"]}}]}}"#,
             ["source_groups[0].mode"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"id": "a", "sources": {"kubernetes": ["#
                + #"{"integration": "c", "pod_selector": {"namespace": "n"}, "node_selector": {}}]}}]}}"#,
             ["source_groups[0].sources.kubernetes[0]"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"id": "a", "sources": {"kubernetes": ["#
                + #"{"integration": "c"}]}}]}}"#, ["source_groups[0].sources.kubernetes[0]"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"id": "a", "sources": {"kubernetes": ["#
                + #"{"node_selector": {"match_labels": {"a": "b"}}}]}}]}}"#,
             ["source_groups[0].sources.kubernetes[0].integration"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"id": "a", "sources": {"ips": ["1.1.1.1"]}, "rules": ["#
                + #"{"id": "r", "action": "allow", "match": {}}, {"id": "r", "action": "deny", "match": {}}]}]}}"#,
             ["source_groups[0].rules[1].id"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"id": "a", "sources": {"ips": ["1.1.1.1"]}, "rules": ["#
                + #"{"id": "r", "action": "block", "mode": "watch", "match": {}}]}]}}"#,
             ["source_groups[0].rules[0].action", "source_groups[0].rules[0].mode"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"id": "a", "sources": {"ips": ["1.1.1.1"]}, "rules": ["#
                + #"{"id": "r", "action": "allow"}]}]}}"#, ["source_groups[0].rules[0].match"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"id": "a", "priority": "high", "sources": {"ips": ["1.1.1.1"]}}]}}"#,
             ["source_groups[0].priority"]),
            (#"{"mode": "audit", "policy": {"source_groups": [{"id": "a", "sourcez": {}, "sources": {"ips": ["1.1.1.1"]}}]}}"#,
             ["source_groups[0].sourcez"]),
        ]
        for (document, paths) in cases {
            #expect(issues(document).map(\.path) == paths, "\(document)")
        }
    }

    @Test func reportsEveryProblemAtOnce() {
        let document = envelope(match: #"{"dst_ports": [70000, "5-1"], "dst_cidrs": ["x"], "proto": "bogus"}"#,
                                extraRule: #", {"id": "r", "action": "allow", "match": {"icmp_types": [999]}}"#)
        let paths = Set(issues(document).map(\.path))
        #expect(paths == ["source_groups[0].rules[0].match.dst_ports[0]", "source_groups[0].rules[0].match.dst_ports[1]",
                          "source_groups[0].rules[0].match.dst_cidrs[0]", "source_groups[0].rules[0].match.proto",
                          "source_groups[0].rules[1].match.icmp_types[0]"])
    }

    @Test func malformedJSONIsOneClearIssue() {
        for bad in ["", "{", #"{"mode": "audit",}"#, "[1, 2", #"{"a": 01}"#, "nul", #"{"a": "\u12"}"#, "{} {}"] {
            let found = issues(bad)
            #expect(found.count == 1 && found[0].message.hasPrefix("invalid JSON"), "\(bad): \(found)")
        }
        let deep = String(repeating: "[", count: 10_000)
        #expect(issues(deep).first?.message.contains("nesting") == true)
    }

    @Test func hostnamePatterns() throws {
        let exact = try HostnamePattern("API.Example.com.")
        #expect(exact.matches("api.example.com") && exact.matches("API.EXAMPLE.COM."))
        #expect(!exact.matches("api-example.com") && !exact.matches("x.api.example.com"))
        let wildcard = try HostnamePattern("*.example.com")
        #expect(wildcard.matches("a.example.com") && wildcard.matches("a.b.example.com"))
        #expect(!wildcard.matches("example.com") && !wildcard.matches("badexample.com"))
        let regex = try HostnamePattern("(api|www)\\.example\\.(com|org)")
        #expect(regex.matches("WWW.example.org") && !regex.matches("www.example.org.evil.com"))
    }

    /// Names already normal come back as they are (the fast path); every other form is lower-cased with
    /// one trailing dot dropped, Unicode included.
    @Test func hostnameNormalization() {
        let cases: [(String, String)] = [
            ("api.example.com", "api.example.com"), ("API.Example.com", "api.example.com"),
            ("api.example.com.", "api.example.com"), ("Api.example.com..", "api.example.com."), (".", "."),
            ("", ""), ("CAF\u{C9}.example", "caf\u{E9}.example"), ("caf\u{E9}.example.", "caf\u{E9}.example"),
            ("x-1_2.test", "x-1_2.test"),
        ]
        for (name, normal) in cases { #expect(HostnamePattern.normalize(name) == normal, "\(name)") }
    }
}

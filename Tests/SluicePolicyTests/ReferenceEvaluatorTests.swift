// The evaluation semantics of spec 004_5ec636780970ae37.txt ("Policy Model") and the mode
// decisions of ARCHITECTURE.md, one behaviour per test, on the reference evaluator.
import Testing
@testable import SluicePolicy
import SluicePolicyGen

func evaluator(_ json: String) throws -> ReferenceEvaluator {
    ReferenceEvaluator(try parse(json))
}

func tcp(_ src: String, _ dst: String, _ dport: UInt16, sport: UInt16 = 40000) -> PacketQuery {
    PacketQuery(src: IPAddress(src)!, dst: IPAddress(dst)!, proto: 6, srcPort: sport, dstPort: dport)
}

struct LearnedSet: LearnedAddressLookup {
    var entries: Set<String>
    func contains(group: Int, rule: Int, address: IPAddress) -> Bool { entries.contains("\(group)/\(rule)/\(address)") }
}

@Suite struct ReferenceEvaluatorTests {
    static let office = """
    {"mode": "enforce", "policy": {"default_policy": "allow", "source_groups": [
      {"id": "late", "sources": {"cidrs": ["10.0.0.0/8"]}, "rules": [
        {"id": "late-deny", "action": "deny", "match": {"proto": "tcp", "dst_ports": [22]}}]},
      {"id": "early", "priority": 5, "sources": {"cidrs": ["10.1.0.0/16"]}, "rules": [
        {"id": "second", "priority": 20, "action": "deny", "match": {"dst_cidrs": ["203.0.113.0/24"]}},
        {"id": "first", "priority": 10, "action": "allow", "match": {"dst_ips": ["203.0.113.7"]}},
        {"id": "web", "action": "allow", "match": {"proto": "tcp", "dst_ports": ["80-81", 443]}}
      ], "default_action": "deny"},
      {"id": "fallthrough", "priority": 1, "sources": {"ips": ["10.1.2.3"]}, "rules": [
        {"id": "only-dns", "action": "allow", "match": {"proto": "udp", "dst_ports": [53]}}]}
    ]}}
    """

    @Test func groupsInPriorityOrderAndFirstRuleWins() throws {
        let policy = try evaluator(ReferenceEvaluatorTests.office)
        // "early" (priority 5) is walked before "late" (no priority); "first" (10) before "second" (20).
        var v = policy.evaluate(tcp("10.1.9.9", "203.0.113.7", 22))
        #expect(v.verdict == .allow && v.sourceGroup == "early" && v.rule == "first" && v.decidedBy == .rule)
        v = policy.evaluate(tcp("10.1.9.9", "203.0.113.8", 443))
        #expect(v.verdict == .deny && v.rule == "second")
        #expect(v.findings == [Finding(sourceGroup: "early", rule: "second", enforced: true)])
    }

    @Test func groupDefaultIsStrongerThanDefaultPolicy() throws {
        let policy = try evaluator(ReferenceEvaluatorTests.office)
        let v = policy.evaluate(tcp("10.1.9.9", "198.51.100.1", 8080))
        #expect(v.verdict == .deny && v.decidedBy == .groupDefault && v.sourceGroup == "early" && v.rule == nil)
    }

    @Test func groupWithoutDefaultFallsThrough() throws {
        let policy = try evaluator(ReferenceEvaluatorTests.office)
        // 10.1.2.3: "fallthrough" (priority 1) has no match and no default, then "early" decides.
        let v = policy.evaluate(tcp("10.1.2.3", "198.51.100.1", 80))
        #expect(v.verdict == .allow && v.sourceGroup == "early" && v.rule == "web")
        // 10.2.0.1 is only in "late": no rule matches port 80, no default, so default_policy allow.
        let w = policy.evaluate(tcp("10.2.0.1", "198.51.100.1", 80))
        #expect(w.verdict == .allow && w.decidedBy == .defaultPolicy && w.sourceGroup == nil && w.findings.isEmpty)
        let x = policy.evaluate(tcp("10.2.0.1", "198.51.100.1", 22))
        #expect(x.verdict == .deny && x.rule == "late-deny")
    }

    @Test func unsetDefaultPolicyDenies() throws {
        let policy = try evaluator(#"{"mode": "enforce", "policy": {"source_groups": []}}"#)
        let v = policy.evaluate(tcp("10.0.0.1", "1.1.1.1", 443))
        #expect(v.verdict == .deny && v.decidedBy == .defaultPolicy)
        #expect(v.findings == [Finding(sourceGroup: nil, rule: nil, enforced: true)])
    }

    @Test func matchingIsAdditive() throws {
        let policy = try evaluator("""
        {"mode": "enforce", "policy": {"default_policy": "deny", "source_groups": [
          {"id": "g", "sources": {"cidrs": ["10.0.0.0/8", "fd00::/8"]}, "rules": [
            {"id": "r", "action": "allow", "match": {"dst_cidrs": ["192.0.2.0/24", "2001:db8::/32"], "proto": "tcp",
             "src_ports": ["30000-40000"], "dst_ports": [443]}}]}]}}
        """)
        #expect(policy.evaluate(tcp("10.0.0.1", "192.0.2.1", 443, sport: 30000)).verdict == .allow)
        #expect(policy.evaluate(tcp("fd00::1", "2001:db8::9", 443, sport: 40000)).verdict == .allow)
        #expect(policy.evaluate(tcp("10.0.0.1", "192.0.2.1", 443, sport: 50000)).verdict == .deny)
        #expect(policy.evaluate(tcp("10.0.0.1", "192.0.2.1", 444, sport: 30000)).verdict == .deny)
        #expect(policy.evaluate(tcp("10.0.0.1", "192.0.3.1", 443, sport: 30000)).verdict == .deny)
        let udp = PacketQuery(src: IPAddress("10.0.0.1")!, dst: IPAddress("192.0.2.1")!, proto: 17, srcPort: 30000, dstPort: 443)
        #expect(policy.evaluate(udp).verdict == .deny)
        // Families never mix: an IPv6 destination is not in 192.0.2.0/24 nor an IPv4 one in 2001:db8::/32.
        #expect(policy.evaluate(tcp("fd00::1", "2001:db9::1", 443, sport: 30000)).verdict == .deny)
    }

    @Test func bareICMPRuleGetsTheDefaultControls() throws {
        let policy = try evaluator("""
        {"mode": "enforce", "policy": {"default_policy": "deny", "source_groups": [
          {"id": "g", "sources": {"cidrs": ["0.0.0.0/0", "::/0"]}, "rules": [
            {"id": "icmp", "action": "allow", "match": {"proto": "icmp"}},
            {"id": "icmp6", "action": "allow", "match": {"proto": "icmpv6"}}]}]}}
        """)
        func icmp(_ proto: UInt8, _ type: UInt8, _ dst: String = "1.1.1.1") -> PolicyAction {
            policy.evaluate(PacketQuery(src: IPAddress(dst.contains(":") ? "::1" : "10.0.0.1")!, dst: IPAddress(dst)!,
                                        proto: proto, icmpType: type)).verdict
        }
        for type in PolicyOrder.defaultICMPv4Types { #expect(icmp(1, type) == .allow) }
        for type: UInt8 in [5, 9, 10, 13, 17] { #expect(icmp(1, type) == .deny, "ICMP type \(type)") }
        for type in PolicyOrder.defaultICMPv6Types { #expect(icmp(58, type, "2001:db8::1") == .allow) }
        for type: UInt8 in [133, 134, 135, 136, 137] { #expect(icmp(58, type, "2001:db8::1") == .deny) }
    }

    @Test func ruleAuditModeSkipsTheRuleAndRecordsIt() throws {
        let policy = try evaluator("""
        {"mode": "enforce", "policy": {"default_policy": "allow", "source_groups": [
          {"id": "g", "sources": {"cidrs": ["10.0.0.0/8"]}, "rules": [
            {"id": "new-deny", "mode": "audit", "action": "deny", "match": {"dst_ports": [443]}},
            {"id": "other-deny", "mode": "audit", "action": "deny", "match": {"proto": "tcp"}},
            {"id": "audit-allow", "mode": "audit", "action": "allow", "match": {}},
            {"id": "old-allow", "action": "allow", "match": {"dst_ports": [443]}},
            {"id": "ssh", "action": "deny", "match": {"dst_ports": [22]}}]}]}}
        """)
        let v = policy.evaluate(tcp("10.0.0.1", "1.1.1.1", 443))
        #expect(v.verdict == .allow && v.rule == "old-allow" && v.mode == .enforce)
        #expect(v.findings == [Finding(sourceGroup: "g", rule: "new-deny", enforced: false),
                               Finding(sourceGroup: "g", rule: "other-deny", enforced: false)])
        let ssh = policy.evaluate(tcp("10.0.0.1", "1.1.1.1", 22))
        #expect(ssh.verdict == .deny && ssh.findings == [Finding(sourceGroup: "g", rule: "other-deny", enforced: false),
                                                         Finding(sourceGroup: "g", rule: "ssh", enforced: true)])
    }

    @Test func groupAuditModeRelaxesOnlyThatGroup() throws {
        let policy = try evaluator("""
        {"mode": "enforce", "policy": {"default_policy": "deny", "source_groups": [
          {"id": "canary", "mode": "audit", "sources": {"cidrs": ["10.0.1.0/24"]}, "rules": [
            {"id": "no-ssh", "action": "deny", "match": {"dst_ports": [22]}}], "default_action": "deny"},
          {"id": "pass", "mode": "audit", "sources": {"cidrs": ["10.0.2.0/24"]}, "rules": []},
          {"id": "rest", "sources": {"cidrs": ["10.0.0.0/8"]}, "rules": [
            {"id": "no-ssh", "action": "deny", "match": {"dst_ports": [22]}}]}]}}
        """)
        let canary = policy.evaluate(tcp("10.0.1.5", "1.1.1.1", 22))
        #expect(canary.verdict == .allow && canary.decision == .deny && canary.mode == .audit)
        #expect(canary.findings == [Finding(sourceGroup: "canary", rule: "no-ssh", enforced: false)])
        let canaryDefault = policy.evaluate(tcp("10.0.1.5", "1.1.1.1", 80))
        #expect(canaryDefault.verdict == .allow && canaryDefault.decidedBy == .groupDefault)
        #expect(canaryDefault.findings == [Finding(sourceGroup: "canary", rule: nil, enforced: false)])
        // An audit group that decides nothing lets evaluation fall through unchanged.
        let passed = policy.evaluate(tcp("10.0.2.5", "1.1.1.1", 22))
        #expect(passed.verdict == .deny && passed.sourceGroup == "rest" && passed.mode == .enforce)
        let rest = policy.evaluate(tcp("10.9.0.1", "1.1.1.1", 22))
        #expect(rest.verdict == .deny && rest.findings == [Finding(sourceGroup: "rest", rule: "no-ssh", enforced: true)])
    }

    @Test func policyAuditModeTurnsEveryFinalDenyIntoARecordedAllow() throws {
        var request = try parse(ReferenceEvaluatorTests.office)
        request.mode = .audit
        request.policy.defaultPolicy = .deny
        let policy = ReferenceEvaluator(request)
        let ruleDeny = policy.evaluate(tcp("10.1.9.9", "203.0.113.8", 443))
        #expect(ruleDeny.verdict == .allow && ruleDeny.decision == .deny && ruleDeny.mode == .audit)
        #expect(ruleDeny.findings == [Finding(sourceGroup: "early", rule: "second", enforced: false)])
        let defaultDeny = policy.evaluate(tcp("192.0.2.1", "1.1.1.1", 443))
        #expect(defaultDeny.verdict == .allow && defaultDeny.decidedBy == .defaultPolicy)
        #expect(defaultDeny.findings == [Finding(sourceGroup: nil, rule: nil, enforced: false)])
        let allowed = policy.evaluate(tcp("10.1.9.9", "203.0.113.7", 443))
        #expect(allowed.verdict == .allow && allowed.decision == .allow && allowed.findings.isEmpty)
    }

    @Test func disabledPolicyIsNotActiveAndFailsClosed() throws {
        var request = try parse(ReferenceEvaluatorTests.office)
        request.mode = .disabled
        let v = ReferenceEvaluator(request).evaluate(tcp("10.1.9.9", "203.0.113.7", 443))
        #expect(v.verdict == .deny && v.decidedBy == .disabled && v.mode == .disabled && v.findings.isEmpty)
    }

    static let dnsPolicy = """
    {"mode": "enforce", "policy": {"default_policy": "allow", "source_groups": [
      {"id": "payments", "priority": 1, "sources": {"cidrs": ["10.1.0.0/16"]}, "rules": [
        {"id": "no-evil", "action": "deny", "match": {"dns_hostname": "evil.example.com"}},
        {"id": "audit-ads", "mode": "audit", "action": "deny", "match": {"dns_hostname": "*.ads.example"}},
        {"id": "stripe", "action": "allow", "match": {"dns_hostname": "*.example.com", "proto": "tcp", "dst_ports": [443]}},
        {"id": "any-web", "action": "allow", "match": {"proto": "tcp", "dst_ports": [443]}},
        {"id": "ads", "action": "allow", "match": {"dns_hostname": ".*\\\\.ads\\\\.example"}}
      ], "default_action": "allow"},
      {"id": "all", "priority": 2, "sources": {"cidrs": ["10.0.0.0/8"]}, "rules": [
        {"id": "everything", "action": "allow", "match": {"dns_hostname": ".*"}}]}
    ]}}
    """

    @Test func dnsIsDecidedByTheFirstClaimingGroupAndDeniesByDefault() throws {
        let policy = try evaluator(ReferenceEvaluatorTests.dnsPolicy)
        let source = IPAddress("10.1.0.5")!
        var v = policy.evaluateDNS(source: source, name: "API.example.com.")
        #expect(v.verdict == .allow && v.rule == "stripe")
        v = policy.evaluateDNS(source: source, name: "evil.example.com")
        #expect(v.verdict == .deny && v.rule == "no-evil")
        // No matching DNS rule: deny, even though default_action and default_policy allow, and even
        // though group "all" would allow it: only the first claiming group decides DNS.
        v = policy.evaluateDNS(source: source, name: "example.org")
        #expect(v.verdict == .deny && v.decidedBy == .dnsNoRule && v.sourceGroup == "payments")
        v = policy.evaluateDNS(source: source, name: "x.ads.example")
        #expect(v.verdict == .allow && v.rule == "ads" && v.findings == [Finding(sourceGroup: "payments", rule: "audit-ads",
                                                                                   enforced: false)])
        v = policy.evaluateDNS(source: IPAddress("10.2.0.1")!, name: "example.org")
        #expect(v.verdict == .allow && v.sourceGroup == "all")
        v = policy.evaluateDNS(source: IPAddress("192.0.2.1")!, name: "example.org")
        #expect(v.verdict == .deny && v.decidedBy == .noGroup)
    }

    @Test func hostnameRulesMatchPacketsToLearnedAddressesOnly() throws {
        let policy = try evaluator(ReferenceEvaluatorTests.dnsPolicy)
        let learned = LearnedSet(entries: ["0/2/198.51.100.7"])
        // Port 443 to a learned address: "stripe"; port 80 to it is not covered by "stripe" (its
        // L4 matchers say 443), so the group default decides.
        #expect(policy.evaluate(tcp("10.1.0.5", "198.51.100.7", 443), learned: learned).rule == "stripe")
        #expect(policy.evaluate(tcp("10.1.0.5", "198.51.100.8", 443), learned: learned).rule == "any-web")
        #expect(policy.evaluate(tcp("10.1.0.5", "198.51.100.7", 80), learned: learned).decidedBy == .groupDefault)
        #expect(policy.evaluate(tcp("10.1.0.5", "198.51.100.7", 443)).rule == "any-web")
    }

    @Test func tlsRulesWaitForTheHandshakeThenMatchIt() throws {
        let policy = try evaluator("""
        {"mode": "enforce", "policy": {"default_policy": "deny", "source_groups": [
          {"id": "g", "sources": {"cidrs": ["10.0.0.0/8"]}, "rules": [
            {"id": "api", "action": "allow", "match": {"proto": "tcp", "dst_ports": [443],
              "tls": {"sni": ["api.example.com"], "server_cn": "api\\\\.example\\\\.com"}}},
            {"id": "pinned", "action": "allow", "match": {"dst_ports": [443], "tls": {"sni": ["pinned.example"],
              "fingerprint_sha256": ["AA:\(String(repeating: "0", count: 62))"], "tls13_uninspectable": "allow"}}}
          ]}]}}
        """)
        let packet = tcp("10.0.0.1", "192.0.2.1", 443)
        #expect(policy.evaluate(packet).decidedBy == .tlsPending)
        let cert = CertificateInfo(subjectAlternativeNames: ["api.example.com"], commonName: "api.example.com",
                                   distinguishedName: "CN=api.example.com", sha256: String(repeating: "1", count: 64))
        #expect(policy.evaluate(packet, tls: TLSObservation(sni: "api.example.com", certificate: cert)).rule == "api")
        let wrongCN = CertificateInfo(subjectAlternativeNames: [], commonName: "evil.example", distinguishedName: nil,
                                      sha256: "")
        #expect(policy.evaluate(packet, tls: TLSObservation(sni: "api.example.com", certificate: wrongCN)).verdict == .deny)
        // TLS 1.3 hides the certificate: "api" leaves tls13_uninspectable unset (deny), "pinned" allows.
        #expect(policy.evaluate(packet, tls: TLSObservation(sni: "api.example.com", tls13: true)).verdict == .deny)
        #expect(policy.evaluate(packet, tls: TLSObservation(sni: "pinned.example", tls13: true)).rule == "pinned")
        #expect(policy.evaluate(packet, tls: TLSObservation(sni: nil)).verdict == .deny)
    }

    /// The compiled tables judge a handshake as the reference evaluator does, including the
    /// "certificate still to come" state the dataplane uses between ClientHello and Certificate.
    @Test func compiledTLSLookupAgreesWithTheReference() throws {
        let text = """
        {"mode": "enforce", "policy": {"default_policy": "deny", "source_groups": [
          {"id": "g", "sources": {"cidrs": ["10.0.0.0/8"]}, "rules": [
            {"id": "audit-deny", "action": "deny", "mode": "audit", "match": {"dst_ports": [443],
              "tls": {"sni": ".*\\\\.bad"}}},
            {"id": "api", "action": "allow", "match": {"proto": "tcp", "dst_ports": [443],
              "tls": {"sni": ["api.example.com"], "server_san": ["api.example.com"]}}},
            {"id": "open", "action": "allow", "match": {"dst_ports": [443], "tls": {"sni": ".*\\\\.open"}}}
          ], "default_action": "deny"}]}}
        """
        let request = try PolicyParser.parseRequest(jsonBytes: Array(text.utf8)).value
        let reference = ReferenceEvaluator(request)
        let compiled = PolicyCompiler.compile(request)
        struct Fixed: TLSChainVerifying { func verify(anchorsPEM: [String]) -> Bool { false } }
        let cert = CertificateInfo(subjectAlternativeNames: ["api.example.com"], commonName: nil,
                                   distinguishedName: nil, sha256: "")
        let packet = tcp("10.0.0.1", "192.0.2.1", 443)
        let observations = [
            TLSObservation(sni: "api.example.com", awaitingCertificate: true),
            TLSObservation(sni: "api.example.com", certificate: cert),
            TLSObservation(sni: "api.example.com", tls13: true),
            TLSObservation(sni: "x.open"), TLSObservation(sni: "x.bad"), TLSObservation(sni: nil),
        ]
        for observation in observations {
            var findings = FindingList()
            let fast = compiled.lookup(packet, learned: NoLearnedAddresses(), tls: observation, verifier: Fixed(),
                                       findings: &findings)
            let slow = reference.evaluate(packet, tls: observation)
            #expect(fast.verdict == slow.verdict && fast.decidedBy == slow.decidedBy, "\(observation)")
            #expect(compiled.ruleID(fast.group, fast.rule) == slow.rule, "\(observation)")
            #expect(findings.held == slow.findings.count, "\(observation)")
        }
        #expect(reference.evaluate(packet, tls: observations[0]).decidedBy == .tlsPending)
        #expect(reference.evaluate(packet, tls: observations[1]).rule == "api")
    }
}

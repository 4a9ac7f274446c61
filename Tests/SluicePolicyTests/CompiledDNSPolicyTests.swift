// CompiledDNSPolicy against its oracle, the reference evaluator's DNS walk, on generated policies: every
// dns_hostname pattern kind (exact, `*.domain`, regular expressions, non-ASCII), audit-mode rules and
// groups, the three policy modes, IPv4 and IPv6 sources and single addresses, names in any case with or
// without the trailing dot. The verdict (with its findings) and the located group and rule must agree,
// and so must the rule that re-binds learned addresses.
import SluicePolicyGen
import Testing
@testable import SluicePolicy

@Suite("CompiledDNSPolicy")
struct CompiledDNSPolicyTests {
    static let patterns = ["api.example.com", "*.example.org", "*.org", "x.example.org", #".*\.example\.net"#,
                           "caf\u{E9}.example.org", "*.b.example.org", #"(api|www)\.example\.com"#]
    static let names = ["api.example.com", "API.Example.COM.", "x.example.org", "a.b.example.org", "example.org",
                        "xexample.org", ".example.org", "caf\u{E9}.example.org", "CAF\u{C9}.EXAMPLE.ORG",
                        "evil.example.net", "www.example.com", "b.example.org", "org", ".", ""]

    @Test func decidesAsTheReferenceEvaluator() throws {
        var generator = PolicyGenerator(seed: 0xD45C, profile: .dense)
        var random = SeededRandom(seed: 0xD45C)
        var decided = 0, audited = 0
        for round in 0..<240 {
            var config = generator.policy(groups: 4, rulesPerGroup: 12)
            for g in config.sourceGroups.indices {
                if Int.random(in: 0..<4, using: &random) == 0 { config.sourceGroups[g].mode = .audit }
                for r in config.sourceGroups[g].rules.indices where Int.random(in: 0..<3, using: &random) == 0 {
                    config.sourceGroups[g].rules[r].match.dnsHostname =
                        try HostnamePattern(Self.patterns[Int.random(in: 0..<Self.patterns.count, using: &random)])
                    if Bool.random(using: &random) { config.sourceGroups[g].rules[r].mode = .audit }
                }
            }
            let mode: PolicyMode = round % 8 == 7 ? .disabled : (round % 3 == 0 ? .audit : .enforce)
            let reference = ReferenceEvaluator(mode: mode, policy: config)
            let compiled = CompiledDNSPolicy(mode: mode, policy: config)
            for packet in generator.packets(for: config, count: 5) {
                for name in Self.names {
                    let expected = reference.evaluateDNSLocated(source: packet.src, name: name)
                    let actual = compiled.evaluate(source: packet.src, name: name)
                    #expect(actual.verdict == expected.verdict, "\(name) from \(packet.src), round \(round)")
                    #expect(actual.group == expected.group && actual.rule == expected.rule,
                            "\(name) from \(packet.src), round \(round)")
                    if let group = expected.group {
                        // The deciding rule for re-binding: the located rule when an enforce-mode rule decided.
                        let deciding = compiled.decidingRule(group: group, name: name)
                        #expect(deciding?.index == (expected.verdict.decidedBy == .rule ? expected.rule : nil))
                    }
                    if expected.rule != nil { decided += 1 }
                    if expected.verdict.findings.contains(where: { !$0.enforced }) { audited += 1 }
                }
            }
        }
        // The generated cases exercise what they are meant to.
        #expect(decided > 1_000, "rules decided \(decided) times")
        #expect(audited > 500, "audited findings \(audited) times")
    }

    @Test func outOfRangeGroupsDecideNothing() throws {
        let compiled = CompiledDNSPolicy(mode: .enforce, policy: PolicyConfig(sourceGroups: []))
        #expect(compiled.decidingRule(group: 0, name: "a.example") == nil)
        #expect(compiled.decidingRule(group: -1, name: "a.example") == nil)
    }
}

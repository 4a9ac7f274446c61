// The compiled tables against the reference evaluator, on generated policies and packets.
// Every test run compares 60 policies x 300 packets; SLUICE_DIFFERENTIAL=full runs the
// full size the policy-engine issue asks for (200 policies x 500 packets = 100,000 packets).
import Foundation
import Testing
import SluicePolicy
import SluicePolicyGen

/// Learned addresses decided by a hash of (group, rule, address): about half of all triples,
/// the same answer for both evaluators.
struct HashedLearned: LearnedAddressLookup {
    func contains(group: Int, rule: Int, address: IPAddress) -> Bool {
        var hasher = SeededRandom(seed: UInt64(group) &* 1_000_003 &+ UInt64(rule) &* 7919 &+ UInt64(address.hashSeed))
        return hasher.next() & 1 == 0
    }
}

extension IPAddress {
    var hashSeed: UInt64 {
        switch self {
        case .v4(let value): return UInt64(value)
        case .v6(let value): return UInt64(truncatingIfNeeded: value) ^ UInt64(truncatingIfNeeded: value >> 64)
        }
    }
}

@Suite struct DifferentialTests {
    @Test func compiledTablesAgreeWithTheReferenceEvaluator() {
        let full = ProcessInfo.processInfo.environment["SLUICE_DIFFERENTIAL"] == "full"
        let policies = full ? 200 : 60
        let packets = full ? 500 : 300
        var generator = PolicyGenerator(seed: 0x5107_CE, profile: .dense)
        var seen: [DecidedBy: Int] = [:]
        var auditFindings = 0, enforcedFindings = 0, mismatches = 0
        for policyIndex in 0..<policies {
            let mode: PolicyMode = [.enforce, .enforce, .audit, .disabled][policyIndex % 4]
            let config = generator.policy(groups: Int.random(in: 1...12, using: &generator.random),
                                          rulesPerGroup: Int.random(in: 1...90, using: &generator.random))
            let reference = ReferenceEvaluator(mode: mode, policy: config)
            let compiled = PolicyCompiler.compile(mode: mode, policy: config)
            for packet in generator.packets(for: config, count: packets) {
                let expected = reference.evaluate(packet, learned: HashedLearned())
                var list = FindingList()
                let raw = compiled.lookup(packet, learned: HashedLearned(), findings: &list)
                var got = compiled.report(packet, learned: HashedLearned())
                // The compiled form keeps four findings inline and counts the rest; the hot-path
                // lookup counts them all.
                #expect(list.dropped == max(0, expected.findings.count - FindingList.capacity))
                #expect(compiled.lookup(packet, learned: HashedLearned()) == raw && raw.findingCount == expected.findings.count)
                got.findings = Array(got.findings.prefix(FindingList.capacity))
                var want = expected
                want.findings = Array(want.findings.prefix(FindingList.capacity))
                if got != want {
                    mismatches += 1
                    if mismatches <= 5 {
                        Issue.record("policy \(policyIndex) (\(mode)), \(packet):\n  reference \(want)\n  compiled  \(got)")
                    }
                }
                seen[expected.decidedBy, default: 0] += 1
                auditFindings += expected.findings.filter { !$0.enforced }.count
                enforcedFindings += expected.findings.filter(\.enforced).count
            }
        }
        #expect(mismatches == 0)
        // The generated cases must reach every kind of decision, or the comparison proves little.
        for kind in [DecidedBy.rule, .groupDefault, .defaultPolicy, .disabled, .tlsPending] {
            #expect(seen[kind, default: 0] > policies, "too few \(kind) decisions: \(seen)")
        }
        #expect(auditFindings > policies && enforcedFindings > policies)
    }

    @Test func emptyAndDisabledPolicies() {
        for mode in PolicyMode.allCases {
            for defaultPolicy in [nil, PolicyAction.allow, .deny] {
                let config = PolicyConfig(defaultPolicy: defaultPolicy)
                let packet = PacketQuery(src: .v4(1), dst: .v6(2), proto: 6, srcPort: 1, dstPort: 2)
                let compiled = PolicyCompiler.compile(mode: mode, policy: config)
                #expect(compiled.report(packet) == ReferenceEvaluator(mode: mode, policy: config).evaluate(packet))
            }
        }
    }
}

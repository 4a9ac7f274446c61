// The stored policy text is written by a direct writer (JSONValue.canonicalText) that must give
// byte for byte what JSONEncoder with sorted keys and unescaped slashes gives, since the store
// holds texts written both ways: compared on random documents full of the awkward cases and on a
// generated policy of 1,000 rules.

import Foundation
@testable import SluiceAPI
import SluicePolicy
import SluicePolicyGen
import SluiceStore
import Testing

@Suite struct CanonicalTextTests {
    static func encoderText(_ value: JSONValue) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Strings made of the characters that escaping and key ordering care about.
    static func awkwardString(_ random: inout SeededRandom) -> String {
        let pieces = ["a", "B", "z", "_", "-", "0", "9", "10", "/", "\"", "\\", "\u{0}", "\u{8}", "\t", "\n", "\u{B}",
                      "\u{C}", "\r", "\u{1F}", " ", "\u{7F}", "é", "e\u{301}", "\u{2028}", "\u{FEFF}", "😀", "中"]
        return (0..<Int.random(in: 0...6, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
    }

    static func randomValue(_ random: inout SeededRandom, depth: Int) -> JSONValue {
        switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &random) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &random))
        case 2: return .int([Int64.min, Int64.max, 0, -1, Int64.random(in: -100_000...100_000, using: &random)]
                    .randomElement(using: &random)!)
        case 3: return .double([0.5, -2.25, 1e300, 1e-7, 0.1].randomElement(using: &random)!)
        case 4: return .string(awkwardString(&random))
        case 5: return .array((0..<Int.random(in: 0...4, using: &random)).map { _ in randomValue(&random, depth: depth + 1) })
        default:
            var members: [(key: String, value: JSONValue)] = []
            var seen = Set<String>()
            for _ in 0..<Int.random(in: 0...5, using: &random) {
                let key = awkwardString(&random)
                if seen.insert(key).inserted { members.append((key, randomValue(&random, depth: depth + 1))) }
            }
            return .object(members)
        }
    }

    @Test func randomDocumentsMatchJSONEncoder() throws {
        var random = SeededRandom(seed: 0xCA40_1CA1)
        for _ in 0..<2_000 {
            let value = Self.randomValue(&random, depth: 0)
            #expect(value.canonicalText == (try Self.encoderText(value)))
        }
    }

    @Test func aGeneratedPolicyMatchesJSONEncoder() throws {
        var generator = PolicyGenerator(seed: 11, profile: .classBench)
        let config = generator.policy(groups: 10, rulesPerGroup: 100)
        let document = try JSONValue.parse(Array(JSONEncoder().encode(config)))
        let text = document.canonicalText
        #expect(text == (try Self.encoderText(document)))
        // And it reads back as the same document.
        #expect(try JSONValue.parse(Array(text.utf8)).canonicalText == text)
    }

    /// A single policy record goes out with the stored text spliced in; it must read exactly as the
    /// record encoded whole (policy parsed and encoded again), names and warnings with quotes included.
    @Test func recordBodySplicesTheStoredTextExactly() throws {
        var random = SeededRandom(seed: 0x5B11CE)
        for round in 0..<50 {
            let body = Self.randomValue(&random, depth: 0).canonicalText
            let stored = StoredPolicy(
                id: "id-\(round)", name: round % 2 == 0 ? "web \"policy\":null" : nil, mode: .audit,
                active: round % 3 == 0, createdAt: Date(timeIntervalSince1970: 1_700_000_000),
                updatedAt: Date(timeIntervalSince1970: 1_700_000_100), version: round, body: body)
            let record = PolicyJSON(
                stored, deployment: round % 2 == 0 ? nil : DeploymentState(
                    policyID: "id", version: round, mode: .audit, generation: 3, compiled: true, dataplane: "absent",
                    error: nil),
                warnings: [ValidationIssue(path: "policy.source_groups[0]", message: "say \"policy\":null")])
            let whole = String(decoding: try SluiceRequestContext.makeResponseEncoder().encode(record), as: UTF8.self)
            let spliced = String(decoding: try record.responseBody(encoder: SluiceRequestContext.makeResponseEncoder()), as: UTF8.self)
            #expect(spliced == whole)
        }
    }
}

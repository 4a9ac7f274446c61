// Classification benchmark: cost per lookup of the compiled tables against the reference
// evaluator, on ClassBench-like generated rule sets of 100 to 100,000 rules (fixed seed), with
// compile time and table memory. Run: swift run -c release classify-bench [--repeat N]
// Results and how to read them: docs/benchmarks.md.
import Foundation
import SluicePolicy
import SluicePolicyGen

/// Writes a line at once (unbuffered), so progress shows when piped into a file.
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

let arguments = CommandLine.arguments
let repeats = arguments.firstIndex(of: "--repeat").flatMap { Int(arguments[$0 + 1]) } ?? 5
let sizes = arguments.firstIndex(of: "--sizes").map { arguments[$0 + 1].split(separator: ",").compactMap { Int($0) } }
    ?? [100, 1_000, 10_000, 100_000]
let rulesPerGroup = 100

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Runs `body` and returns nanoseconds per item.
func nanosPerItem(_ count: Int, _ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    let elapsed = clock.measure(body)
    return seconds(elapsed) * 1e9 / Double(count)
}

struct Row {
    var rules: Int
    var groups: Int
    var compileMs: [Double] = []
    var compiledNs: [Double] = []
    var referenceNs: [Double] = []
    var bytes = 0
}

say("Sluice classification benchmark: \(repeats) runs each, medians (min-max); \(rulesPerGroup) rules per source group")
say("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.hostName)")
var rows: [Row] = []
var sink = 0
for size in sizes {
    var generator = PolicyGenerator(seed: 20261121, profile: .classBench)
    let groups = max(1, size / rulesPerGroup)
    let config = generator.policy(groups: groups, rulesPerGroup: min(size, rulesPerGroup))
    let packets = generator.packets(for: config, count: 65_536)
    var row = Row(rules: config.sourceGroups.reduce(0) { $0 + $1.rules.count }, groups: groups)
    let reference = ReferenceEvaluator(mode: .enforce, policy: config)
    let referencePackets = Array(packets.prefix(max(50, 2_000_000 / size)))
    var compiled = PolicyCompiler.compile(mode: .enforce, policy: config)
    for _ in 0..<repeats {
        let clock = ContinuousClock()
        let started = clock.now
        compiled = PolicyCompiler.compile(mode: .enforce, policy: config)
        row.compileMs.append(seconds(clock.now - started) * 1e3)
        let rounds = 16
        let table = compiled  // a local: the loop must not retain the shared variable per lookup
        row.compiledNs.append(nanosPerItem(packets.count * rounds) {
            for _ in 0..<rounds {
                for packet in packets {
                    let verdict = table.lookup(packet)
                    sink &+= Int(verdict.rule) &+ (verdict.verdict == .allow ? 1 : 0)
                }
            }
        })
        row.referenceNs.append(nanosPerItem(referencePackets.count) {
            for packet in referencePackets {
                sink &+= reference.evaluate(packet).verdict == .allow ? 1 : 0
            }
        })
        // The two must agree on every measured packet, or the figures compare different work.
        for packet in referencePackets.prefix(200) {
            precondition(compiled.report(packet) == reference.evaluate(packet), "evaluators disagree")
        }
    }
    row.bytes = compiled.tableBytes
    rows.append(row)
    func spread(_ values: [Double], _ format: String) -> String {
        String(format: format, median(values)) + " (" + String(format: format, values.min()!) + "-"
            + String(format: format, values.max()!) + ")"
    }
    say(String(format: "rules %7d groups %5d | compiled %@ ns/lookup | reference %@ ns/lookup | speedup x%.0f | compile %@ ms | tables %.1f MiB",
                 row.rules, row.groups, spread(row.compiledNs, "%.1f") as NSString, spread(row.referenceNs, "%.0f") as NSString,
                 median(row.referenceNs) / median(row.compiledNs), spread(row.compileMs, "%.1f") as NSString,
                 Double(row.bytes) / 1_048_576))
}
if let small = rows.first(where: { $0.rules == 1_000 }), let large = rows.first(where: { $0.rules == 100_000 }) {
    say(String(format: "growth 1,000 -> 100,000 rules: x%.2f (goal: at most x2)", median(large.compiledNs) / median(small.compiledNs)))
}
if let goal = rows.first(where: { $0.rules == 10_000 }) {
    say(String(format: "10,000 rules: %.1f ns/lookup (goal < 100), compile %.1f ms (goal < 50)",
                 median(goal.compiledNs), median(goal.compileMs)))
}
say("(checksum \(sink & 0xff))")

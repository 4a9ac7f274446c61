// The child process of the store's crash test (SQLiteStoreCrashTests): a write storm against the
// store at argv[1] that prints one line per acknowledged (returned) write, until it is SIGKILLed.
// Lines: `ack <policy-name> <version>` and `ackfinding <cumulative count>`.
import Foundation
import SluicePolicy
import SluiceStore

/// Writes one whole line with a single write(2), so a kill never leaves an acknowledgement buffered.
func acknowledge(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

guard CommandLine.arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: StoreStressHelper DB_PATH\n".utf8))
    exit(2)
}
let store = try SQLiteStore(path: CommandLine.arguments[1])
var findingCount = try await store.findings(FindingFilter(type: "stress")).first?.count ?? 0
var i = 0
while true {
    i += 1
    if i % 7 == 0 {
        let now = Date()
        try await store.mergeFindings([
            AuditFinding(type: "stress", policyID: "p", enforced: false, firstSeen: now, lastSeen: now)
        ])
        findingCount += 1
        acknowledge("ackfinding \(findingCount)")
        continue
    }
    let name = "storm-\(i % 13)"
    let mode: PolicyMode = [.disabled, .audit, .enforce][i % 3]
    let body = #"{"default_policy":"deny","marker":"\#(name)","i":\#(i)}"#
    let (policy, _) = try await store.upsertPolicy(
        named: name, PolicyWrite(name: name, mode: mode, body: body), expectedVersion: nil, actor: "stress")
    acknowledge("ack \(name) \(policy.version)")
}

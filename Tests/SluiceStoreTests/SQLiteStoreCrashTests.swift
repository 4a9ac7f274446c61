// The crash test issue 4 asks for: a child process (StoreStressHelper) runs a write storm against
// the store and is killed with SIGKILL at a random moment; after reopening, every write the child
// acknowledged is present and no record is partial (versions contiguous, admin log complete).
import Foundation
import SluiceProcess
import Testing

@testable import SluiceStore

@Suite struct SQLiteStoreCrashTests {
    /// The helper sits next to the test bundle in the build directory.
    static var helperURL: URL {
        let own = URL(
            fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0])
        return own.deletingLastPathComponent().appendingPathComponent("StoreStressHelper")
    }

    @Test(arguments: 0..<6) func killDuringWriteStormLosesNothingAcknowledged(round: Int) async throws {
        let helper = Self.helperURL
        try #require(
            FileManager.default.isExecutableFile(atPath: helper.path),
            "build the helper first: swift build --build-tests (looked at \(helper.path))")
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let dbPath = directory.appendingPathComponent("crash.sqlite").path
        // Several lives of the child on the same file: each resumes the storm where the last died.
        var acked: [String: Int] = [:]
        var ackedFindings = 0
        for _ in 0..<2 {
            let output = try runAndKill(helper: helper, dbPath: dbPath, afterMilliseconds: Int.random(in: 150...900))
            for line in output.split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.count == 3, parts[0] == "ack", let version = Int(parts[2]) {
                    acked[String(parts[1]), default: 0] = max(acked[String(parts[1])] ?? 0, version)
                } else if parts.count == 2, parts[0] == "ackfinding", let count = Int(parts[1]) {
                    ackedFindings = max(ackedFindings, count)
                }
            }
        }
        #expect(!acked.isEmpty, "the child acknowledged no write before it was killed")

        let store = try SQLiteStore(path: dbPath)
        #expect(try store.integrityCheck() == "ok")
        for (name, version) in acked {
            let policy = try #require(try await store.policy(named: name), "acknowledged policy \(name) is missing")
            #expect(policy.version >= version, "\(name): acknowledged v\(version), found v\(policy.version)")
        }
        for policy in try await store.policies() {
            let versions = try await store.versions(ofPolicy: policy.id)
            #expect(versions.map(\.version) == Array(1...policy.version), "\(policy.name ?? policy.id) has gaps")
            #expect(versions.last?.body == policy.body)
            for version in versions {
                #expect((try? JSONSerialization.jsonObject(with: Data(version.body.utf8))) != nil)
            }
        }
        let log = try await store.adminLog(limit: 1_000_000, beforeSeq: nil)
        for policy in try await store.policies() {
            let writes = log.filter {
                $0.target == policy.id && ($0.action == "policy.create" || $0.action == "policy.update")
            }
            #expect(writes.count == policy.version, "admin log and versions disagree for \(policy.name ?? policy.id)")
        }
        #expect(try await store.policies().filter(\.active).count <= 1)
        let findingCount = try await store.findings(FindingFilter(type: "stress")).first?.count ?? 0
        // Each life may have committed one merge it did not live to acknowledge.
        #expect(findingCount >= ackedFindings && findingCount <= ackedFindings + 2)
    }

    /// Runs the helper until `afterMilliseconds` past its first acknowledgement, SIGKILLs it, and
    /// returns the complete lines it printed.
    func runAndKill(helper: URL, dbPath: String, afterMilliseconds: Int) throws -> String {
        let process = try Subprocess.start([helper.path, dbPath], stderr: .discard)
        // Wait for the first acknowledgement so the kill lands inside the storm, not in startup.
        process.waitForOutput(timeout: 60) { $0.contains("\n") }
        usleep(useconds_t(afterMilliseconds * 1000))
        process.kill(SIGKILL)
        var text = process.wait().stdout
        // A line cut by the kill was not acknowledged.
        if !text.hasSuffix("\n"), let lastNewline = text.lastIndex(of: "\n") {
            text = String(text[...lastNewline])
        }
        return text
    }
}

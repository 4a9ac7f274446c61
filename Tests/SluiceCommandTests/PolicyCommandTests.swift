// `sluice policy check` and `sluice policy eval` as an operator runs them: the built binary,
// real files (JSON and YAML, envelope and bare), exit codes, and the JSON contract of eval.
import Foundation
import SluiceProcess
import Testing

/// The `sluice` binary next to this test bundle (built by `swift build --build-tests`).
let sluiceBinary: URL = {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    while directory.path != "/" && !FileManager.default.fileExists(atPath: directory.appendingPathComponent("sluice").path) {
        directory = directory.deletingLastPathComponent()
    }
    return directory.appendingPathComponent("sluice")
}()

let binaryMissing = "the sluice binary is not built next to the tests: run `swift build --build-tests` first"

typealias Outcome = ProcessResult

/// The environment for a `sluice` child: the caller's with `overrides`, where SLUICE_TOKEN and
/// SLUICE_SERVER of the caller's shell must not leak into a test's expectations.
func sluiceEnvironment(_ overrides: [String: String] = [:]) -> [String: String] {
    var base = ProcessInfo.processInfo.environment
    base["SLUICE_TOKEN"] = nil
    base["SLUICE_SERVER"] = nil
    return base.merging(overrides) { $1 }
}

func sluice(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> Outcome {
    try Subprocess.run(
        [sluiceBinary.path] + arguments, input: stdin.map { Data($0.utf8) }, environment: sluiceEnvironment(environment))
}

func temporaryFile(_ name: String, _ contents: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let file = directory.appendingPathComponent(name)
    try contents.write(to: file, atomically: true, encoding: .utf8)
    return file.path
}

@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: sluiceBinary.path), Comment(rawValue: binaryMissing)))
struct PolicyCommandTests {
    static let envelope = """
    {"mode": "audit", "name": "office-egress", "policy": {"default_policy": "deny", "source_groups": [
      {"id": "branch-office", "sources": {"cidrs": ["10.10.0.0/16"]}, "rules": [
        {"id": "allow-dns", "action": "allow", "match": {"proto": "udp", "dst_ports": [53]}},
        {"id": "no-ssh", "action": "deny", "match": {"proto": "tcp", "dst_ports": [22]}},
        {"id": "stripe", "action": "allow", "match": {"dns_hostname": "*.stripe.com", "dst_ports": [443]}},
        {"id": "ping", "action": "allow", "match": {"proto": "icmp"}}
      ], "default_action": "deny"}]}}
    """

    static let yaml = """
    # The same policy, as YAML, bare (no envelope), so it is taken as enforce.
    default_policy: deny
    source_groups:
      - id: branch-office
        sources:
          cidrs: [10.10.0.0/16]
        rules:
          - id: allow-dns
            action: allow
            match: {proto: udp, dst_ports: [53]}
          - id: no-ssh
            action: deny
            match: {proto: tcp, dst_ports: ["22"]}
        default_action: deny
    """

    @Test func checkAcceptsValidFilesInBothFormats() throws {
        for (name, text) in [("policy.json", PolicyCommandTests.envelope), ("policy.yaml", PolicyCommandTests.yaml)] {
            let result = try sluice(["policy", "check", try temporaryFile(name, text)])
            #expect(result.status == 0, "\(name): \(result.stderr)")
            #expect(result.stdout.contains("valid"))
        }
    }

    @Test func checkListsEveryProblemWithItsPathAndExitsOne() throws {
        let bad = """
        {"mode": "enforced", "policy": {"source_groups": [
          {"id": "g", "sources": {"cidrs": ["10.0.0.0/33"]}, "rules": [
            {"id": "r", "action": "allow", "match": {"proto": "icmp", "dst_ports": [80, "90-80"]}}]}]}}
        """
        let result = try sluice(["policy", "check", try temporaryFile("bad.json", bad)])
        #expect(result.status == 1)
        for path in ["mode:", "source_groups[0].sources.cidrs[0]:", "source_groups[0].rules[0].match.dst_ports[1]:",
                     "source_groups[0].rules[0].match.dst_ports:"] {
            #expect(result.stderr.contains(path), "missing \(path) in:\n\(result.stderr)")
        }
        let garbage = try sluice(["policy", "check", "-"], stdin: "{\"mode\": ")
        #expect(garbage.status == 1 && garbage.stderr.contains("invalid JSON"))
        let missing = try sluice(["policy", "check", "/nonexistent/policy.json"])
        #expect(missing.status == 1 && missing.stderr.contains("cannot read"))
    }

    func evalJSON(_ arguments: [String], file: String = PolicyCommandTests.envelope) throws -> [String: Any] {
        let result = try sluice(["policy", "eval", try temporaryFile("p.json", file)] + arguments + ["--json"])
        #expect(result.status == 0, "\(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    @Test func evalPrintsTheContractOfTheIssue() throws {
        let ssh = try evalJSON(["--src", "10.10.1.1", "--dst", "198.51.100.1", "--proto", "tcp", "--dport", "22"])
        #expect(Set(ssh.keys) == ["verdict", "decision", "decided_by", "source_group", "rule", "mode", "findings"])
        #expect(ssh["verdict"] as? String == "allow" && ssh["decision"] as? String == "deny")
        #expect(ssh["decided_by"] as? String == "rule" && ssh["rule"] as? String == "no-ssh")
        #expect(ssh["source_group"] as? String == "branch-office" && ssh["mode"] as? String == "audit")
        let findings = try #require(ssh["findings"] as? [[String: Any]])
        #expect(findings.count == 1 && findings[0]["enforced"] as? Bool == false && findings[0]["rule"] as? String == "no-ssh")

        let dns = try evalJSON(["--src", "10.10.1.1", "--dns", "api.stripe.com"])
        #expect(dns["verdict"] as? String == "allow" && dns["rule"] as? String == "stripe")
        let unknownName = try evalJSON(["--src", "10.10.1.1", "--dns", "example.org"])
        #expect(unknownName["decided_by"] as? String == "dns_no_rule" && unknownName["decision"] as? String == "deny")
        let stranger = try evalJSON(["--src", "192.0.2.1", "--dns", "api.stripe.com"])
        #expect(stranger["decided_by"] as? String == "no_group" && stranger["source_group"] is NSNull)
        let ping = try evalJSON(["--src", "10.10.1.1", "--dst", "198.51.100.1", "--proto", "icmp", "--icmp-type", "8",
                                 "--icmp-code", "0"])
        #expect(ping["rule"] as? String == "ping" && ping["decision"] as? String == "allow")
        let outsider = try evalJSON(["--src", "192.0.2.1", "--dst", "198.51.100.1", "--proto", "udp", "--dport", "53"])
        #expect(outsider["decided_by"] as? String == "default_policy" && outsider["rule"] is NSNull)
    }

    @Test func evalAgreesWithEnforceModeAfterTheFlip() throws {
        let enforced = PolicyCommandTests.envelope.replacingOccurrences(of: "\"mode\": \"audit\"", with: "\"mode\": \"enforce\"")
        let ssh = try evalJSON(["--src", "10.10.1.1", "--dst", "198.51.100.1", "--proto", "tcp", "--dport", "22"],
                               file: enforced)
        #expect(ssh["verdict"] as? String == "deny" && ssh["mode"] as? String == "enforce")
        let findings = try #require(ssh["findings"] as? [[String: Any]])
        #expect(findings.first?["enforced"] as? Bool == true)
        let disabled = PolicyCommandTests.envelope.replacingOccurrences(of: "\"mode\": \"audit\"", with: "\"mode\": \"disabled\"")
        let off = try evalJSON(["--src", "10.10.1.1", "--dst", "198.51.100.1", "--proto", "udp", "--dport", "53"], file: disabled)
        #expect(off["decided_by"] as? String == "disabled" && off["verdict"] as? String == "deny")
    }

    @Test func evalRefusesIncompleteQuestions() throws {
        let file = try temporaryFile("p.json", PolicyCommandTests.envelope)
        for arguments in [["--src", "10.0.0.1"], ["--src", "10.0.0.1", "--dst", "1.1.1.1"],
                          ["--src", "nope", "--dns", "a.example"], ["--src", "10.0.0.1", "--dst", "::1", "--proto", "tcp"],
                          ["--src", "10.0.0.1", "--dst", "1.1.1.1", "--proto", "tcpx"]] {
            let result = try sluice(["policy", "eval", file] + arguments)
            #expect(result.status != 0 && !result.stderr.isEmpty, "\(arguments)")
        }
    }
}

// The rollout workflow of 000_03ae8a53bab02b1f.txt against a running `sluice run --dataplane none`,
// driven the way an operator does it: the guide's curl commands verbatim (host and token aside) and
// the CLI client (`policy apply|list|get|mode|history|delete`, `audit findings`, `dns-cache`,
// `stats`), plus the metrics listener. Findings from real traffic need the dataplane; here the
// findings route is exercised empty and behind its performance-mode gate (the in-process
// RolloutWorkflowTests feed the recorder directly).
import Foundation
import SluiceProcess
import Testing

let curlPresent = FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")

struct GatewayDidNotStart: Error, CustomStringConvertible {
    var description: String { "sluice run did not answer /health within 15 s" }
}

/// A `sluice run --dataplane none` in a fresh data directory, with an admin and a readonly token.
final class RunningGateway {
    let directory: URL
    let dataDir: String
    let apiPort = Int.random(in: 20_000...40_000)
    let metricsPort = Int.random(in: 40_001...60_000)
    private(set) var process: RunningProcess?
    let admin: String
    let readonly: String

    var server: String { "https://127.0.0.1:\(apiPort)" }

    init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-rollout-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        dataDir = directory.appendingPathComponent("data").path
        admin = try sluice(["token", "create", "--data-dir", dataDir, "--role", "admin"]).stdout
            .trimmingCharacters(in: .newlines)
        readonly = try sluice(["token", "create", "--data-dir", dataDir, "--role", "readonly"]).stdout
            .trimmingCharacters(in: .newlines)
        process = try Subprocess.start(
            [
                sluiceBinary.path, "run", "--data-dir", dataDir, "--api-listen", "127.0.0.1:\(apiPort)",
                "--metrics-listen", "127.0.0.1:\(metricsPort)", "--dataplane", "none",
            ], stdout: .discard, stderr: .discard)
        for _ in 0..<150 {
            if try curl(["-sfk", "\(server)/health"]).status == 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        stop()
        throw GatewayDidNotStart()
    }

    /// SIGTERM, as systemd stops it; returns the exit status.
    @discardableResult func stop() -> Int32 {
        process?.kill(SIGTERM)
        let status = process?.wait().status ?? -1
        try? FileManager.default.removeItem(at: directory)
        return status
    }

    /// The CLI against this gateway with the admin token from SLUICE_TOKEN and --insecure.
    func cli(_ arguments: [String], token: String? = nil) throws -> Outcome {
        try sluice(arguments + ["--server", server, "--insecure"], environment: ["SLUICE_TOKEN": token ?? admin])
    }

    func curl(_ arguments: [String], environment: [String: String] = [:]) throws -> Outcome {
        try bash(["-c", "curl \"$@\"", "curl"] + arguments, environment: environment)
    }

    /// The guide's exact curl command line (host and token variable aside), run by bash.
    func verbatim(_ command: String) throws -> Outcome {
        try bash(["-c", command], environment: ["NEUWERK_TOKEN": admin])
    }

    /// bash with `arguments` in the gateway's directory; stdout only (stderr is not part of the outcome).
    private func bash(_ arguments: [String], environment: [String: String]) throws -> Outcome {
        try Subprocess.start(
            ["/bin/bash"] + arguments, stderr: .discard,
            environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, directory: directory.path
        ).wait()
    }
}

func object(_ text: String) throws -> [String: Any] {
    try #require(
        try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
}

@Suite(.serialized,
       .enabled(if: FileManager.default.isExecutableFile(atPath: sluiceBinary.path), Comment(rawValue: binaryMissing)),
       .enabled(if: curlPresent, "needs /usr/bin/curl: the guide's commands are run verbatim"))
struct RolloutCommandTests {
    @Test func theGuideStepByStepWithCurlAndTheCLI() async throws {
        let gateway = try await RunningGateway()
        defer { gateway.stop() }
        let policyFile = gateway.directory.appendingPathComponent("policy.json")
        try PolicyCommandTests.envelope.write(to: policyFile, atomically: true, encoding: .utf8)

        // Check Performance Mode First: GET, and PUT {"enabled": true}.
        let auth = ["-H", "Authorization: Bearer \(gateway.admin)"]
        let performance = try gateway.curl(["-sk"] + auth + ["\(gateway.server)/api/v1/settings/performance-mode"])
        #expect(try object(performance.stdout)["enabled"] as? Bool == true)
        let enable = try gateway.curl(["-sk", "-X", "PUT", "-H", "Content-Type: application/json"] + auth
            + ["--data", #"{"enabled": true}"#, "\(gateway.server)/api/v1/settings/performance-mode"])
        #expect(try object(enable.stdout)["enabled"] as? Bool == true)

        // Step 1, verbatim: curl -sk ... -X PUT .../policies/by-name/office-egress --data @policy.json
        let step1 = try gateway.verbatim("""
            curl -sk \\
            -H "Authorization: Bearer $NEUWERK_TOKEN" \\
            -H "Content-Type: application/json" \\
            -X PUT \\
            \(gateway.server)/api/v1/policies/by-name/office-egress \\
            --data @policy.json
            """)
        let record = try object(step1.stdout)
        #expect(record["mode"] as? String == "audit" && record["active"] as? Bool == true)
        #expect((record["deployment"] as? [String: Any])?["dataplane"] as? String == "absent")

        // The same write through the CLI is a new version (a replace), mode from the envelope.
        let apply = try gateway.cli(["policy", "apply", "-f", policyFile.path])
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(apply.stdout.contains("replaced office-egress: version 2, mode audit, active"))

        // Step 2: /ready and stats.
        #expect(try gateway.curl(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "\(gateway.server)/ready"]).stdout
            == "200")
        let stats = try gateway.cli(["stats"])
        #expect(stats.status == 0 && stats.stdout.contains("policy.mode") && stats.stdout.contains("audit"))
        let statsJSON = try object(try gateway.cli(["stats", "--json"]).stdout)
        #expect((statsJSON["dataplane"] as? [String: Any])?["kind"] as? String == "none")

        // Step 4: evidence. No dataplane, so no findings yet, but the surfaces answer.
        let findings = try gateway.cli(["audit", "findings", "--source-group", "branch-office", "--limit", "10"])
        #expect(findings.status == 0 && findings.stdout.hasPrefix("LAST SEEN"), "\(findings.stderr)")
        let findingsJSON = try object(try gateway.cli(["audit", "findings", "--json"]).stdout)
        #expect((findingsJSON["findings"] as? [Any])?.isEmpty == true)
        let cache = try gateway.cli(["dns-cache"])
        #expect(cache.status == 0 && cache.stdout.hasPrefix("HOSTNAME"))

        // Step 6: promote with only the mode changed; the history proves it.
        let promote = try gateway.cli(["policy", "mode", "office-egress", "enforce"])
        #expect(promote.status == 0, "\(promote.stderr)")
        #expect(promote.stdout.contains("mode audit → enforce, version 2 → 3"))
        let history = try gateway.cli(["policy", "history", "office-egress"])
        #expect(history.stdout.contains("mode audit → enforce"), "\(history.stdout)")
        let versions = try object(try gateway.cli(["policy", "history", "office-egress", "--json"]).stdout)
        let bodies = (versions["versions"] as? [[String: Any]] ?? []).map {
            try? JSONSerialization.data(withJSONObject: $0["policy"] as Any, options: .sortedKeys)
        }
        #expect(bodies.count == 3 && bodies[1] == bodies[2], "promotion changed the policy object")
        #expect(try gateway.curl(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "\(gateway.server)/ready"]).stdout
            == "200")
        let list = try gateway.cli(["policy", "list"])
        #expect(list.stdout.contains("office-egress") && list.stdout.contains("enforce"))
        let same = try gateway.cli(["policy", "mode", "office-egress", "enforce"])
        #expect(same.status == 0 && same.stdout.contains("already in enforce mode"))

        // Flip back to audit; `get` shows it.
        #expect(try gateway.cli(["policy", "mode", "office-egress", "audit"]).status == 0)
        let get = try gateway.cli(["policy", "get", "office-egress"])
        #expect(get.stdout.hasPrefix("office-egress: version 4, mode audit, active"))
        #expect(get.stdout.contains("\"default_policy\" : \"deny\""))

        // `sluice wiretap` opens the stream and holds it (no dataplane, so no flows): the node counts
        // one subscriber until the client goes away.
        let tap = try Subprocess.start(
            [sluiceBinary.path, "wiretap", "--server", gateway.server, "--insecure", "--dst-port", "443",
             "--proto", "tcp"],
            stdout: .discard, stderr: .discard,
            environment: ProcessInfo.processInfo.environment.merging(["SLUICE_TOKEN": gateway.admin]) { $1 })
        var subscribed = false
        for _ in 0..<50 where !subscribed {
            let now = try object(try gateway.cli(["stats", "--json"]).stdout)
            subscribed = (now["wiretap"] as? [String: Any])?["subscribers"] as? Int == 1
            if !subscribed { try await Task.sleep(for: .milliseconds(100)) }
        }
        tap.kill(SIGTERM)
        tap.wait()
        #expect(subscribed, "sluice wiretap did not hold a stream open")

        // Performance mode off: findings answer 503 with the hint, the CLI exits 1 and says so.
        _ = try gateway.curl(["-sk", "-X", "PUT", "-H", "Content-Type: application/json"] + auth
            + ["--data", #"{"enabled": false}"#, "\(gateway.server)/api/v1/settings/performance-mode"])
        let gated = try gateway.cli(["audit", "findings"])
        #expect(gated.status == 1 && gated.stderr.contains("HTTP 503") && gated.stderr.contains("performance-mode"))
        let gatedTap = try gateway.cli(["wiretap", "--count", "1"])
        #expect(gatedTap.status == 1 && gatedTap.stderr.contains("HTTP 503"))

        // Metrics on their own listener, no token.
        let metrics = try gateway.curl(["-s", "http://127.0.0.1:\(gateway.metricsPort)/metrics"])
        let replaced = #"sluice_api_requests_total{route="/api/v1/policies/by-name/{name}",method="PUT",status="200"}"#
        #expect(metrics.stdout.contains(replaced))
        // Generation 1 is the start-up deployment (no policy yet); each of the 4 writes adds one.
        #expect(metrics.stdout.contains("sluice_policy_generation 5.0"))
        #expect(metrics.stdout.contains(#"sluice_store_write_duration_seconds_count{op="upsert_policy"} 4"#))

        // Delete, then it is gone.
        let delete = try gateway.cli(["policy", "delete", "office-egress"])
        #expect(delete.status == 0 && delete.stdout.hasPrefix("deleted office-egress"))
        let gone = try gateway.cli(["policy", "get", "office-egress"])
        #expect(gone.status == 1 && gone.stderr.contains("HTTP 404"))

        #expect(gateway.stop() == 0, "SIGTERM must stop sluice run cleanly")
    }

    @Test func sigtermWithAConnectedWiretapClientStopsAtOnce() async throws {
        let gateway = try await RunningGateway()
        defer { gateway.stop() }
        let tap = try Subprocess.start(
            [sluiceBinary.path, "wiretap", "--server", gateway.server, "--insecure"], stdout: .discard,
            stderr: .discard,
            environment: ProcessInfo.processInfo.environment.merging(["SLUICE_TOKEN": gateway.admin]) { $1 })
        defer {
            tap.kill(SIGKILL)
            tap.wait()
        }
        var subscribed = false
        for _ in 0..<50 where !subscribed {
            let stats = try object(try gateway.cli(["stats", "--json"]).stdout)
            subscribed = (stats["wiretap"] as? [String: Any])?["subscribers"] as? Int == 1
            if !subscribed { try await Task.sleep(for: .milliseconds(100)) }
        }
        try #require(subscribed)
        let start = ContinuousClock.now
        // The hub ends the stream before the server drains; the client sees the end and exits 0.
        #expect(gateway.stop() == 0)
        #expect(ContinuousClock.now - start < .seconds(3), "an open SSE stream held up SIGTERM")
        #expect(tap.wait().status == 0)
    }

    @Test func errorsAreClearAndExitNonZero() async throws {
        let gateway = try await RunningGateway()
        defer { gateway.stop() }
        // Validation problems come back with their paths (checked locally first, same parser).
        let bad = try temporaryFile(
            "bad.json", #"{"mode": "audit", "name": "x", "policy": {"source_groups": [{"id": "g"}]}}"#)
        let invalid = try gateway.cli(["policy", "apply", "-f", bad])
        #expect(invalid.status == 1 && invalid.stderr.contains("source_groups[0].sources"))
        // A bare policy needs --mode and --name.
        let bare = try temporaryFile("bare.yaml", "default_policy: deny\n")
        let noMode = try gateway.cli(["policy", "apply", "-f", bare, "--name", "bare"])
        #expect(noMode.status != 0 && noMode.stderr.contains("--mode"))
        let applied = try gateway.cli(["policy", "apply", "-f", bare, "--name", "bare", "--mode", "disabled"])
        #expect(applied.status == 0 && applied.stdout.contains("created bare: version 1, mode disabled, inactive"))
        // Server-side errors: no token, read-only token on a write, a certificate not trusted.
        let anonymous = try sluice(["stats", "--server", gateway.server, "--insecure"])
        #expect(anonymous.status == 1 && anonymous.stderr.contains("HTTP 401"))
        #expect(anonymous.stderr.contains("SLUICE_TOKEN"), "the 401 hint names the variable")
        let readOnly = try gateway.cli(["policy", "mode", "bare", "audit"], token: gateway.readonly)
        #expect(readOnly.status == 1 && readOnly.stderr.contains("HTTP 403"))
        let untrusted = try sluice(["stats", "--server", gateway.server], environment: ["SLUICE_TOKEN": gateway.admin])
        #expect(untrusted.status == 1 && untrusted.stderr.contains("--insecure"))
        // Trusting the node's own certificate works without --insecure.
        let pinned = try sluice(
            ["stats", "--server", gateway.server, "--cacert", gateway.dataDir + "/tls/cert.pem"],
            environment: ["SLUICE_TOKEN": gateway.admin])
        #expect(pinned.status == 0, "\(pinned.stderr)")
        // Nothing listening.
        let down = try sluice(["stats", "--server", "https://127.0.0.1:1", "--insecure"])
        #expect(down.status == 1 && down.stderr.contains("cannot talk to https://127.0.0.1:1"))
    }
}

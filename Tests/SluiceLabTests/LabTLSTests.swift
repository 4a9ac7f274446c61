// TLS metadata matching end to end, as root, through the AF_XDP dataplane of a lab gateway: curl
// in the client namespace to the lab's TLS server (openssl s_server, certificates for the lab
// names) by an allowed SNI succeeds and by a denied SNI fails, in enforce mode; in audit mode the
// denied one succeeds and a `tls_deny` finding with the SNI is recorded. Both names resolve to
// the same upstream address, so only the handshake tells them apart. A denied handshake is reset
// at both ends: curl fails at once (not by its timeout) and the single-connection s_server is free
// for the next client, which the TLS 1.3 cases (certificate hidden, `tls13_uninspectable`) rely on.
import Foundation
import SluiceLab
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized, .labNeedsRoot, .labNeedsTools, .labNeedsSluiceBinary)
struct LabTLSTests {
    static let prefix = "sluicetls"
    let lab = LabTopology(prefix: LabTLSTests.prefix)
    let runner = SystemCommandRunner()

    /// A policy envelope allowing TLS to port 443 of the upstream only with SNI api.lab.sluice.test.
    static func policy(mode: String) -> String {
        """
        {"mode": "\(mode)", "name": "tls", "policy": {"default_policy": "deny", "source_groups": [
          {"id": "lab-client", "sources": {"cidrs": ["10.77.1.0/24", "fd77:1::/64"]}, "rules": [
            {"id": "api-by-sni", "action": "allow",
             "match": {"dst_cidrs": ["10.77.2.0/24"], "proto": "tcp", "dst_ports": [443],
                       "tls": {"sni": ["api.lab.sluice.test"]}}}
          ], "default_action": "deny"}]}}
        """
    }

    /// The value of `"name": N` in a JSON text (the first occurrence), if any.
    static func counter(_ name: String, in json: String) -> UInt64? {
        let compact = json.filter { !$0.isWhitespace }
        guard let range = compact.range(of: "\"\(name)\":") else { return nil }
        return UInt64(String(compact[range.upperBound...].prefix { $0.isNumber }))
    }

    func inNamespace(_ namespace: String, _ argv: [String]) throws -> CommandResult {
        try runner.run(["ip", "netns", "exec", namespace] + argv)
    }

    /// A policy envelope allowing TLS to the upstream only when the server's certificate (TLS ≤ 1.2)
    /// names api.lab.sluice.test and chains to `anchorPEM`; TLS 1.3 hides it (`tls13` decides).
    static func certificatePolicy(anchorPEM: String, tls13: String = "deny") throws -> String {
        let anchor = String(decoding: try JSONEncoder().encode(anchorPEM), as: UTF8.self)
        return """
        {"mode": "enforce", "name": "tls", "policy": {"default_policy": "deny", "source_groups": [
          {"id": "lab-client", "sources": {"cidrs": ["10.77.1.0/24", "fd77:1::/64"]}, "rules": [
            {"id": "api-by-certificate", "action": "allow",
             "match": {"dst_cidrs": ["10.77.2.0/24"], "proto": "tcp", "dst_ports": [443],
                       "tls": {"server_san": ["api.lab.sluice.test"], "trust_anchors_pem": [\(anchor)],
                               "tls13_uninspectable": "\(tls13)"}}}
          ], "default_action": "deny"}]}}
        """
    }

    /// curl from the client to the upstream's TLS server by `name` (pinned to 10.77.2.2).
    func fetch(_ name: String, extra: [String] = [], maxTime: Int = 3) throws -> CommandResult {
        try inNamespace(lab.client.namespace, [
            "curl", "-sS", "-k", "--max-time", "\(maxTime)", "-o", "/dev/null", "-w", "%{http_code}",
            "--resolve", "\(name):443:10.77.2.2",
        ] + extra + ["https://\(name)/"])
    }

    /// `fetch`, timed: a reset handshake fails well before curl's own timeout.
    func timedFetch(_ name: String, extra: [String] = [], maxTime: Int = 3) throws -> (CommandResult, Double) {
        let start = Date()
        let result = try fetch(name, extra: extra, maxTime: maxTime)
        return (result, Date().timeIntervalSince(start))
    }

    /// Expects `result` to be a handshake the gateway reset: curl failed fast, and not by timing out
    /// (exit 28). curl says "Connection reset by peer" (exit 35 in the handshake, 56 after it).
    func expectReset(_ result: CommandResult, seconds: Double, _ what: String) {
        #expect(result.status != 0 && result.stdout != "200", "\(what) got through: \(result.stdout)")
        #expect(result.status != 28 && seconds < 1.5, "\(what) was not reset: \(seconds) s, \(result.stderr)")
        #expect(result.stderr.lowercased().contains("reset"), "\(what): \(result.status) \(result.stderr)")
    }

    func readStats(api: String, token: String) throws -> String {
        try inNamespace(lab.gatewayInside.namespace, [
            "curl", "-sS", "--max-time", "5", "-H", "Authorization: Bearer \(token)", "\(api)/api/v1/stats",
        ]).stdout
    }

    func put(_ file: URL, api: String, token: String) throws -> CommandResult {
        try inNamespace(lab.gatewayInside.namespace, [
            "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
            "-H", "Authorization: Bearer \(token)", "-H", "Content-Type: application/json",
            "--data-binary", "@\(file.path)", "\(api)/api/v1/policies/by-name/tls",
        ])
    }

    @Test func allowedSNIPassesDeniedSNIIsResetAndAuditRecordsIt() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-tls-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let enforce = directory.appendingPathComponent("enforce.json")
        let audit = directory.appendingPathComponent("audit.json")
        try Self.policy(mode: "enforce").write(to: enforce, atomically: true, encoding: .utf8)
        try Self.policy(mode: "audit").write(to: audit, atomically: true, encoding: .utf8)
        defer {
            _ = try? runner.run([sluiceBinary, "lab", "down", "--prefix", Self.prefix])
            try? FileManager.default.removeItem(at: directory)
        }
        let up = try runner.run(
            [sluiceBinary, "lab", "up", "--json", "--prefix", Self.prefix, "--policy", enforce.path])
        try #require(up.status == 0, "lab up failed: \(up.stderr)")
        let info = try JSONDecoder().decode(LabInfo.self, from: Data(up.stdout.utf8))
        try #require(info.gateway.dataplane == "xdp", "the lab gateway runs without the AF_XDP dataplane")
        let api = try #require(info.api)
        let token = try #require(info.token)

        // Enforce: the denied name is reset after its ClientHello, and the single-connection server
        // then serves the allowed name at once.
        let (denied, deniedSeconds) = try timedFetch("blocked.lab.sluice.test")
        expectReset(denied, seconds: deniedSeconds, "denied SNI")
        let allowed = try fetch("api.lab.sluice.test")
        #expect(allowed.stdout == "200", "allowed SNI after a reset one: \(allowed.stderr)")
        let stats = try inNamespace(lab.gatewayInside.namespace, [
            "curl", "-sS", "--max-time", "5", "-H", "Authorization: Bearer \(token)", "\(api)/api/v1/stats",
        ])
        // The dataplane decided both: one handshake allowed, one denied and reset at both ends.
        #expect(Self.counter("tls_allowed", in: stats.stdout).map { $0 >= 1 } == true, "stats: \(stats.stdout)")
        #expect(Self.counter("tls_denied", in: stats.stdout).map { $0 >= 1 } == true, "stats: \(stats.stdout)")
        #expect(Self.counter("tcp_resets_sent", in: stats.stdout).map { $0 >= 2 } == true, "stats: \(stats.stdout)")

        // Audit: the same policy in audit mode lets the denied name through and records it.
        let putAudit = try put(audit, api: api, token: token)
        #expect(putAudit.stdout == "200", "PUT audit policy: \(putAudit.stdout) \(putAudit.stderr)")
        let audited = try fetch("blocked.lab.sluice.test")
        #expect(audited.stdout == "200", "audit mode should let the denied SNI through: \(audited.stderr)")
        var findings = ""
        for _ in 0..<20 {  // the recorder drains events every 100 ms
            findings = try inNamespace(lab.gatewayInside.namespace, [
                "curl", "-sS", "--max-time", "5", "-H", "Authorization: Bearer \(token)",
                "\(api)/api/v1/audit/findings?finding_type=tls_deny",
            ]).stdout.filter { !$0.isWhitespace }
            if findings.contains("blocked.lab.sluice.test") && findings.contains("\"enforced\":false") { break }
            usleep(250_000)
        }
        #expect(findings.contains("blocked.lab.sluice.test"), "no tls_deny finding with the SNI: \(findings)")
        #expect(findings.contains("\"enforced\":false"), "no audited tls_deny finding: \(findings)")

        // Certificate matchers on the wire: TLS 1.2 shows the certificate (SAN, and the chain to the
        // lab CA verified in the worker); TLS 1.3 hides it and `tls13_uninspectable` decides. Each
        // denied handshake is reset, so the next connection to the same server still works.
        let certificate = directory.appendingPathComponent("certificate.json")
        let anchor = try String(contentsOfFile: info.upstream.caCertificate, encoding: .utf8)
        try Self.certificatePolicy(anchorPEM: anchor).write(to: certificate, atomically: true, encoding: .utf8)
        #expect(try put(certificate, api: api, token: token).stdout == "200")
        let deniedBefore = try Self.counter("tls_denied", in: readStats(api: api, token: token)) ?? 0
        let (wrongCertificate, wrongSeconds) = try timedFetch("blocked.lab.sluice.test", extra: ["--tls-max", "1.2"])
        expectReset(wrongCertificate, seconds: wrongSeconds, "TLS 1.2, certificate for blocked")
        let deniedAfter = try Self.counter("tls_denied", in: readStats(api: api, token: token)) ?? 0
        #expect(deniedAfter > deniedBefore, "the certificate for blocked was not what denied it")
        let pinned = try fetch("api.lab.sluice.test", extra: ["--tls-max", "1.2"])
        #expect(pinned.stdout == "200", "TLS 1.2, certificate for api: \(pinned.stderr)")

        // TLS 1.3 under `"tls13_uninspectable": "deny"`: even the right server is denied (its
        // certificate cannot be seen), reset; TLS 1.2 to it right after still works.
        let (hidden, hiddenSeconds) = try timedFetch("api.lab.sluice.test", extra: ["--tlsv1.3"])
        expectReset(hidden, seconds: hiddenSeconds, "TLS 1.3 under tls13_uninspectable deny")
        let after = try fetch("api.lab.sluice.test", extra: ["--tls-max", "1.2"])
        #expect(after.stdout == "200", "TLS 1.2 after a reset TLS 1.3 handshake: \(after.stderr)")

        // `"tls13_uninspectable": "allow"`: the TLS 1.3 handshake passes.
        let lenient = directory.appendingPathComponent("lenient.json")
        try Self.certificatePolicy(anchorPEM: anchor, tls13: "allow").write(to: lenient, atomically: true,
                                                                            encoding: .utf8)
        #expect(try put(lenient, api: api, token: token).stdout == "200")
        let allowed13 = try fetch("api.lab.sluice.test", extra: ["--tlsv1.3"])
        #expect(allowed13.stdout == "200", "TLS 1.3 under tls13_uninspectable allow: \(allowed13.stderr)")
    }
}

// Hostname policy end to end, as root, in a lab of its own (prefix `sluiced`): the real `sluice run`
// (AF_XDP dataplane and DNS proxy) between the lab client and the upstream's nsd and HTTP server,
// under an enforce policy in which ONLY a `dns_hostname` rule opens the upstream's addresses, and
// only on TCP port 80. Checked, in this order (the order matters: `short` and `api` resolve to the
// same address, so the expiry check runs before anything else teaches that address):
//
//   - before any lookup the upstream's address is unreachable (nothing but the hostname rule opens it);
//   - `short` (TTL 5) resolves through the gateway's proxy, then its address answers HTTP, and a new
//     connection after TTL + grace (1 s each, `--dns-learned-*` through `lab up --gateway-arg`) does not;
//   - `api` resolves through the client's resolver (the gateway) and HTTP to it works, but HTTPS
//     (port 443) does not: the rule's ports restrict the learned address;
//   - `blocked` gets NXDOMAIN, its address stays unreachable, and an enforced `dns_deny` finding exists;
//   - DNS sent straight to the upstream's resolver is judged by packet policy: no rule, no answer;
//   - the counters in /api/v1/stats and /metrics saw the allow, the deny and the upstream latency;
//   - the same policy in audit mode answers `blocked` and records a finding with `enforced: false`;
//   - with `--dns-redirect`, queries sent to the upstream's resolver are answered by the proxy.
//
// `lab down` in a defer removes everything, pass or fail.
import Foundation
import SluiceLab
import Testing

@Suite(.serialized, .labNeedsRoot, .labNeedsTools, .labNeedsSluiceBinary)
struct LabDNSTests {
    static let prefix = "sluiced"
    let runner = SystemCommandRunner()

    /// Enforce; the client group opens nothing by address. `mode` is substituted for the audit step.
    static func policy(mode: String) -> String {
        """
        {"mode": "\(mode)", "name": "dnstest", "policy": {"default_policy": "deny", "source_groups": [
          {"id": "lab-client", "sources": {"cidrs": ["10.77.1.0/24", "fd77:1::/64"]}, "default_action": "deny",
           "rules": [
            {"id": "web", "action": "allow",
             "match": {"dns_hostname": "(api|short)\\\\.lab\\\\.sluice\\\\.test", "proto": "tcp", "dst_ports": [80]}},
            {"id": "blocked-name", "action": "deny", "match": {"dns_hostname": "blocked\\\\.lab\\\\.sluice\\\\.test"}}
          ]}]}}
        """
    }

    func client(_ argv: [String]) throws -> CommandResult {
        try runner.run(["ip", "netns", "exec", "\(Self.prefix)-client"] + argv)
    }

    /// curl from the client; true when the page came back.
    func reaches(_ url: String, timeout: Int = 2, extra: [String] = []) throws -> Bool {
        let result = try client(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--connect-timeout", "\(timeout)", "--max-time",
             "\(timeout + 1)"] + extra + [url])
        return result.status == 0 && result.stdout == "200"
    }

    /// The gateway's API from the client, with the lab's token.
    func api(_ info: LabInfo, _ path: String, extra: [String] = []) throws -> String {
        let base = try #require(info.api), token = try #require(info.token)
        return try client(
            ["curl", "-sS", "--max-time", "5", "-H", "Authorization: Bearer \(token)"] + extra + ["\(base)\(path)"]
        ).stdout
    }

    @Test func hostnameRulesOpenLearnedAddressesForTheirTTLAndPortsOnly() throws {
        defer { _ = try? runner.run([sluiceBinary, "lab", "down", "--prefix", Self.prefix]) }
        let policyFile = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-dns-lab-\(getpid()).json")
        try Self.policy(mode: "enforce").write(to: policyFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: policyFile) }

        let up = try runner.run([
            sluiceBinary, "lab", "up", "--json", "--prefix", Self.prefix, "--policy", policyFile.path,
            "--gateway-arg", "--dns-learned-grace", "--gateway-arg", "1",
            "--gateway-arg", "--dns-learned-minimum", "--gateway-arg", "1",
        ])
        try #require(up.status == 0, "lab up failed: \(up.stderr)")
        let info = try JSONDecoder().decode(LabInfo.self, from: Data(up.stdout.utf8))
        try #require(info.gateway.dataplane == "xdp" && info.gateway.dnsProxy, "the gateway needs XDP and the proxy")
        let resolver = "@\(info.gateway.insideAddresses.first { !$0.contains(":") }?.split(separator: "/").first ?? "")"
        let address = info.upstream.ipv4, blockedAddress = info.upstream.blockedIPv4
        let zone = info.upstream.dnsZone

        // Nothing learned yet: the address is closed (only the hostname rule could open it).
        #expect(try !reaches("http://\(address)/", timeout: 1), "the upstream answered before any lookup")

        // A short TTL: open after the lookup, closed for new connections after TTL 5 s + grace 1 s.
        let short = try client(["kdig", "+short", "+time=2", "+retry=0", resolver, "short.\(zone)", "A"])
        let learnedAt = Date()
        #expect(short.stdout == "\(address)\n", "short via the proxy: \(short.stdout) \(short.stderr)")
        #expect(try reaches("http://\(address)/"), "the learned address of short did not open")
        let cache = try api(info, "/api/v1/dns-cache")
        #expect(cache.contains("short.\(zone)") && cache.contains("lab-client/web"), "dns-cache: \(cache)")
        Thread.sleep(forTimeInterval: max(0, 7.0 - Date().timeIntervalSince(learnedAt)))
        #expect(try !reaches("http://\(address)/", timeout: 1), "still reachable after TTL + grace")

        // The client's own resolver is the gateway: curl resolves api through the proxy. Port 80 only.
        #expect(try reaches("http://api.\(zone)/"), "api through the proxy and the gateway")
        #expect(
            try !reaches("https://api.\(zone)/", timeout: 1, extra: ["--cacert", info.upstream.caCertificate]),
            "port 443 opened by a rule for port 80")

        // A denied name: NXDOMAIN, its address stays closed, an enforced finding.
        let blocked = try client(["kdig", "+time=2", "+retry=0", resolver, "blocked.\(zone)", "A"])
        #expect(blocked.stdout.contains("NXDOMAIN"), "blocked: \(blocked.stdout)")
        #expect(try !reaches("http://\(blockedAddress)/", timeout: 1), "the denied name's address is reachable")
        let findings = try api(info, "/api/v1/audit/findings?finding_type=dns_deny")
        #expect(findings.contains("blocked.\(zone)") && findings.contains("\"enforced\":true"), "\(findings)")

        // Another resolver: packet policy, which has no rule for it.
        let direct = try client(["kdig", "+time=1", "+retry=0", "@\(info.upstream.ipv4)", "api.\(zone)", "A"])
        #expect(!direct.stdout.contains("NOERROR"), "DNS to another resolver passed: \(direct.stdout)")

        // Counters: /api/v1/stats and /metrics.
        let stats = try api(info, "/api/v1/stats")
        for key in ["\"queries_allowed\"", "\"queries_denied\"", "\"nxdomain_policy\"", "\"upstream_latency_us_count\""] {
            #expect(stats.contains(key), "\(key) missing from /api/v1/stats: \(stats)")
        }
        #expect(!stats.contains("\"queries_denied\":0"), "no deny counted: \(stats)")
        let metrics = try runner.run([
            "ip", "netns", "exec", info.gateway.netns, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:9464/metrics",
        ]).stdout
        for line in [
            #"sluice_dns_queries_total{result="denied"} "#, #"sluice_dns_nxdomain_total{cause="policy"} "#,
            #"sluice_dns_upstream_latency_seconds_bucket{le="+Inf"} "#,
        ] {
            #expect(metrics.contains(line), "\(line) missing from /metrics")
        }
        #expect(!metrics.contains(#"sluice_dns_queries_total{result="denied"} 0"#), "no deny in /metrics")

        // Audit mode: the same policy answers the denied name and records an unenforced finding.
        let auditFile = policyFile.deletingLastPathComponent().appendingPathComponent("sluice-dns-audit-\(getpid()).json")
        try Self.policy(mode: "audit").write(to: auditFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: auditFile) }
        let put = try api(
            info, "/api/v1/policies/by-name/dnstest",
            extra: ["-X", "PUT", "-H", "Content-Type: application/json", "--data-binary", "@\(auditFile.path)"])
        #expect(put.contains("audit"), "PUT audit policy: \(put)")
        let audited = try client(["kdig", "+short", "+time=2", "+retry=0", resolver, "blocked.\(zone)", "A"])
        #expect(audited.stdout == "\(blockedAddress)\n", "audit mode should answer: \(audited.stdout)")
        let auditFindings = try api(info, "/api/v1/audit/findings?finding_type=dns_deny")
        #expect(auditFindings.contains("\"enforced\":false"), "no unenforced dns finding: \(auditFindings)")
    }

    /// `--dns-redirect`: DNS the client sends to another resolver (the upstream's nsd) is answered by the
    /// gateway's proxy under the DNS policy, from the address the client asked, over UDP and TCP.
    @Test func dnsRedirectSendsOtherResolversQueriesToTheProxy() throws {
        defer { _ = try? runner.run([sluiceBinary, "lab", "down", "--prefix", Self.prefix]) }
        let policyFile = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-dns-redir-\(getpid()).json")
        try Self.policy(mode: "enforce").write(to: policyFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: policyFile) }
        let up = try runner.run([
            sluiceBinary, "lab", "up", "--json", "--prefix", Self.prefix, "--policy", policyFile.path,
            "--gateway-arg", "--dns-redirect",
        ])
        try #require(up.status == 0, "lab up failed: \(up.stderr)")
        let info = try JSONDecoder().decode(LabInfo.self, from: Data(up.stdout.utf8))
        let other = "@\(info.upstream.ipv4)", zone = info.upstream.dnsZone

        // nsd itself would answer NOERROR with the address: NXDOMAIN means the proxy judged it.
        let udp = try client(["kdig", "+time=2", "+retry=0", other, "blocked.\(zone)", "A"])
        #expect(udp.stdout.contains("NXDOMAIN") && udp.stdout.contains("From \(info.upstream.ipv4)@53"), "\(udp.stdout)")
        let tcp = try client(["kdig", "+tcp", "+time=2", "+retry=0", other, "blocked.\(zone)", "A"])
        #expect(tcp.stdout.contains("NXDOMAIN"), "over TCP: \(tcp.stdout)")
        // IPv6 too: redirected to the inside interface's IPv6 address, where the lab's proxy also listens.
        let six = try client(["kdig", "+time=2", "+retry=0", "@\(info.upstream.ipv6)", "blocked.\(zone)", "A"])
        #expect(six.stdout.contains("NXDOMAIN"), "over IPv6: \(six.stdout) \(six.stderr)")
        // An allowed name through the redirect teaches the dataplane like any proxied answer.
        #expect(try !reaches("http://\(info.upstream.ipv4)/", timeout: 1), "open before any lookup")
        let api = try client(["kdig", "+short", "+time=2", "+retry=0", other, "api.\(zone)", "A"])
        #expect(api.stdout == "\(info.upstream.ipv4)\n", "\(api.stdout) \(api.stderr)")
        #expect(try reaches("http://\(info.upstream.ipv4)/"), "the learned address did not open")
    }
}

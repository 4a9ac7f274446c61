// `sluice run --policy FILE` governs the DNS proxy, not only the dataplane: the built binary runs with
// `--dataplane none`, its proxy on a loopback port and an upstream nobody listens on (127.0.0.1:9, so
// nothing leaves the machine). With the file, a name its rules deny is NXDOMAIN and an allowed one goes
// upstream (SERVFAIL, the upstream being closed); without it the proxy has no policy and REFUSES both.
import Foundation
import SluiceProcess
import Testing

let kdigPath = ["/usr/bin/kdig", "/bin/kdig"].first { FileManager.default.isExecutableFile(atPath: $0) }

@Suite(
    .serialized,
    .enabled(if: FileManager.default.isExecutableFile(atPath: sluiceBinary.path), Comment(rawValue: binaryMissing)),
    .enabled(if: kdigPath != nil, "needs kdig (knot-dnsutils): run scripts/setup.sh"))
struct RunDNSPolicyTests {
    static let policy = """
    {"mode": "enforce", "name": "local-dns", "policy": {"default_policy": "deny", "source_groups": [
      {"id": "loopback", "sources": {"cidrs": ["127.0.0.0/8"]}, "rules": [
        {"id": "allowed", "action": "allow", "match": {"dns_hostname": "*.allowed.test"}}]}]}}
    """

    /// `kdig` against the proxy; its output.
    func dig(_ port: Int, _ name: String) throws -> String {
        try Subprocess.start(
            [kdigPath!, "@127.0.0.1", "-p", "\(port)", "+retry=0", "+time=3", name, "A"], stderr: .sameAsStdout
        ).wait().stdout
    }

    /// Runs the gateway with `extra` arguments until `body` (given the proxy's port and the gateway's pid)
    /// returns; always terminated and reaped.
    func withGateway(_ extra: [String], _ body: (Int, pid_t) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-run-dns-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = Int.random(in: 20_000...60_000)
        let log = directory.appendingPathComponent("log")
        let process = try Subprocess.start(
            [
                sluiceBinary.path, "run", "--data-dir", directory.path, "--dataplane", "none", "--api-plaintext",
                "--api-listen", "127.0.0.1:0", "--metrics-listen", "off", "--dns-listen", "127.0.0.1:\(port)",
                "--dns-upstream", "127.0.0.1:9",
            ] + extra, stdout: .appendFile(log.path), stderr: .sameAsStdout)
        defer {
            process.kill(SIGTERM)
            process.wait()
        }
        // Until the proxy answers at all (REFUSED, NXDOMAIN or SERVFAIL all mean it listens).
        var ready = false
        for _ in 0..<50 where !ready {
            ready = try dig(port, "probe.test").contains("status:")
            if !ready { usleep(200_000) }
        }
        let logText = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        try #require(ready, "the proxy did not answer within 10 s; log:\n\(logText)")
        try body(port, process.pid)
    }

    @Test func localPolicyFileJudgesDNSQueries() throws {
        let file = try temporaryFile("local.json", Self.policy)
        try withGateway(["--policy", file]) { port, _ in
            let denied = try dig(port, "other.test")
            #expect(denied.contains("status: NXDOMAIN"), "denied by the file's policy: \(denied)")
            let allowed = try dig(port, "www.allowed.test")
            #expect(allowed.contains("status: SERVFAIL"), "allowed, forwarded to a closed upstream: \(allowed)")
        }
    }

    @Test func dnsThreadsSetsTheProxysUDPThreads() throws {
        try withGateway(["--dns-threads", "3"]) { _, pid in
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            let names = tasks.compactMap {
                try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            #expect(names.filter { $0.hasPrefix("sluice-dns") }.sorted() == ["sluice-dns0", "sluice-dns1", "sluice-dns2"],
                    "\(names)")
        }
    }

    @Test func withoutAnyPolicyTheProxyRefuses() throws {
        try withGateway([]) { port, _ in
            let refused = try dig(port, "www.allowed.test")
            #expect(refused.contains("status: REFUSED"), "no policy at all: \(refused)")
        }
    }
}

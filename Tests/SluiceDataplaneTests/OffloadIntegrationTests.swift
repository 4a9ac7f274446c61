// Root-only end-to-end test of XDP flow offload (issue 6), in the same three-namespace topology as
// GatewayIntegrationTests (client ── gin [sluice run] gout ── upstream, 2-queue veth pairs, GRO on
// every end so frames redirected by XDP into a veth are received). The same traffic runs through
// `sluice run` twice, with offload (default) and with `--no-offload`, and both give the same
// verdicts, the same allowed/denied counters and the same audit findings; only the offload run
// shows packets carried by the XDP program. Then, with offload: a flow keeps living past the UDP
// idle timeout while its packets pass only through XDP; a policy change that keeps the flow
// allowed sends its stale entries back to the workers and the flow is offloaded again; a policy
// change that denies it cuts it at once; with events off, a denied flow is dropped by the program
// and still counted as denied. Everything it creates is removed by defers, pass or
// fail. Skipped loudly when not root.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SluiceProcess
import Testing
@testable import SluiceDataplane

@Suite(.serialized) struct OffloadIntegrationTests {
    static let basePolicy = """
    {"mode": "enforce", "name": "offload-test", "policy": {"default_policy": "deny", "source_groups": [
      {"id": "clients", "sources": {"cidrs": ["10.81.0.0/16"]}, "rules": [
        {"id": "udp-echo", "action": "allow", "match": {"proto": "udp", "dst_ports": [7777]}},
        {"id": "web", "action": "allow", "match": {"proto": "tcp", "dst_ports": [8080]}},
        {"id": "bulk", "action": "allow", "match": {"proto": "tcp", "dst_ports": [9090]}},
        {"id": "ping", "action": "allow", "match": {"proto": "icmp"}}
      ]}]}}
    """

    /// One UDP 5-tuple (fixed source port): `count` datagrams, `interval` apart, each waiting up
    /// to 0.3 s for its echo. Prints "got N".
    static func session(_ host: String, _ port: Int, sourcePort: Int, count: Int, interval: Double) -> String {
        """
        import socket, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.3)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("", \(sourcePort)))
        got = 0
        for i in range(\(count)):
            s.sendto(b"x%d" % i, ("\(host)", \(port)))
            try:
                while not s.recvfrom(100)[0].endswith(b"x%d" % i): pass
                got += 1
            except socket.timeout: pass
            time.sleep(\(interval))
        print("got", got, flush=True)
        """
    }

    /// A running lab: namespaces, the upstream echo server and one `sluice run`.
    final class Lab {
        let tag = getpid() % 200
        var client: String { "slo-c\(tag)" }
        var gateway: String { "slo-g\(tag)" }
        var upstream: String { "slo-u\(tag)" }
        var upstreamV4: String { "10.83.\(tag).2" }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-offload-\(getpid())")
        var processes: [RunningProcess] = []
        var sluice: RunningProcess?
        var apiURL = ""
        var token = ""

        init() throws {
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            for namespace in [client, gateway, upstream] {
                _ = try? Subprocess.check(["ip", "netns", "del", namespace])
                try Subprocess.check(["ip", "netns", "add", namespace])
                try Subprocess.check(["ip", "-n", namespace, "link", "set", "lo", "up"])
            }
            try Subprocess.check(["ip", "-n", client, "link", "add", "c0", "numtxqueues", "2", "numrxqueues", "2",
                                  "type", "veth", "peer", "name", "gin", "numtxqueues", "2", "numrxqueues", "2",
                                  "netns", gateway])
            try Subprocess.check(["ip", "-n", upstream, "link", "add", "u0", "numtxqueues", "2", "numrxqueues", "2",
                                  "type", "veth", "peer", "name", "gout", "numtxqueues", "2", "numrxqueues", "2",
                                  "netns", gateway])
            func configure(_ namespace: String, _ interface: String, _ v4: String) throws {
                try Subprocess.check(["ip", "-n", namespace, "addr", "add", "\(v4)/24", "dev", interface])
                try Subprocess.check(["ip", "-n", namespace, "link", "set", interface, "up"])
                // GRO gives a veth NAPI: frames the XDP program redirects into its peer are received.
                try Subprocess.check(["ip", "netns", "exec", namespace, "ethtool", "-K", interface, "gro", "on"])
                if interface == "c0" || interface == "u0" {
                    try Subprocess.check(["ip", "netns", "exec", namespace, "ethtool", "-K", interface, "tx", "off"])
                }
            }
            try configure(client, "c0", "10.81.\(tag).2")
            try configure(gateway, "gin", "10.81.\(tag).1")
            try configure(gateway, "gout", "10.83.\(tag).1")
            try configure(upstream, "u0", upstreamV4)
            try Subprocess.check(["ip", "-n", client, "route", "add", "default", "via", "10.81.\(tag).1"])
            try Subprocess.check(["ip", "-n", upstream, "route", "add", "10.81.0.0/16", "via", "10.83.\(tag).1"])
            processes.append(try Subprocess.start(["ip", "netns", "exec", upstream, "python3", "-c",
                                                   GatewayTopology.upstreamServer]))
            // TCP 9090: reads until the client's FIN, answers with the byte count, closes.
            processes.append(try Subprocess.start(["ip", "netns", "exec", upstream, "python3", "-c", """
                import socket
                l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("", 9090)); l.listen()
                while True:
                    c, _ = l.accept(); n = 0
                    while True:
                        d = c.recv(65536)
                        if not d: break
                        n += len(d)
                    c.sendall(b"got %d" % n); c.close()
                """]))
        }

        /// Starts `sluice run` (fresh data directory) with `extra` arguments; waits for the API.
        func startSluice(_ extra: [String]) throws {
            let data = work.appendingPathComponent("data-\(processes.count)")
            let policyFile = work.appendingPathComponent("policy.json")
            try OffloadIntegrationTests.basePolicy.write(to: policyFile, atomically: true, encoding: .utf8)
            let logFile = work.appendingPathComponent("sluice-\(processes.count).log")
            FileManager.default.createFile(atPath: logFile.path, contents: nil)
            let process = try Subprocess.start(
                ["ip", "netns", "exec", gateway, GatewayLab.sluiceExecutable!, "run",
                 "--data-dir", data.path, "--api-listen", "127.0.0.1:0", "--api-plaintext",
                 "--dataplane", "xdp", "--inside", "gin", "--outside", "gout",
                 "--policy", policyFile.path, "--queues", "2", "--cores", "0,1",
                 "--flow-table-size", "4096"] + extra,
                stdout: .appendFile(logFile.path), stderr: .sameAsStdout)
            processes.append(process)
            sluice = process
            func log() -> String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }
            let deadline = Date().addingTimeInterval(30)
            while !log().contains("management API listening") && process.isRunning && Date() < deadline {
                usleep(100_000)
            }
            try #require(process.isRunning && log().contains("policy file in force"), "sluice run started: \(log())")
            apiURL = log().split(separator: "\n").first { $0.contains("management API listening on") }
                .map { String($0[$0.range(of: "http://")!.lowerBound...]) } ?? ""
            token = try Subprocess.check(["ip", "netns", "exec", gateway, GatewayLab.sluiceExecutable!, "token",
                                          "create", "--data-dir", data.path, "--role", "admin"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// Stops the running `sluice run` (SIGTERM) and waits for it.
        func stopSluice() {
            guard let sluice, sluice.isRunning else { return }
            sluice.kill(SIGTERM)
            let deadline = Date().addingTimeInterval(15)
            while sluice.isRunning && Date() < deadline { usleep(50_000) }
            self.sluice = nil
        }

        /// A GET (or POST of `body`) to the API; a POST's answer is returned whatever its status.
        func api(_ path: String, post body: String? = nil, method: String = "POST") throws -> String {
            var arguments = ["ip", "netns", "exec", gateway, "curl", "-s", body == nil ? "-f" : "-S",
                             "-H", "Authorization: Bearer \(token)"]
            if let body { arguments += ["-X", method, "-H", "Content-Type: application/json", "--data", body] }
            return try Subprocess.check(arguments + ["\(apiURL)\(path)"])
        }

        /// The dataplane counters from /api/v1/stats.
        func counters() throws -> [String: UInt64] {
            let json = try JSONSerialization.jsonObject(with: Data(try api("/api/v1/stats").utf8)) as? [String: Any]
            let dataplane = json?["dataplane"] as? [String: Any]
            let counters = dataplane?["counters"] as? [String: Any] ?? [:]
            return counters.compactMapValues { ($0 as? NSNumber)?.uint64Value }
        }

        /// The count of the packet_deny finding for UDP `port` (0: none).
        func denyFindings(port: Int) throws -> Int {
            let json = try JSONSerialization.jsonObject(with: Data(try api("/api/v1/audit/findings").utf8))
            let list = (json as? [String: Any])?["findings"] as? [[String: Any]] ?? (json as? [[String: Any]] ?? [])
            return list.filter { ($0["finding_type"] as? String) == "packet_deny" && ($0["port"] as? Int) == port }
                .reduce(0) { $0 + (($1["count"] as? Int) ?? 0) }
        }

        func inClient(_ arguments: [String]) -> String {
            (try? Subprocess.check(["ip", "netns", "exec", client] + arguments)) ?? "failed"
        }

        /// Runs a UDP session from `sourcePort` to 7777 (or `port`); returns the echoes received.
        func session(sourcePort: Int, count: Int, interval: Double, port: Int = 7777) -> Int {
            let output = inClient(["python3", "-c", OffloadIntegrationTests.session(
                upstreamV4, port, sourcePort: sourcePort, count: count, interval: interval)])
            return Int(output.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1
        }

        func cleanUp() {
            for process in processes where process.isRunning {
                process.kill(SIGKILL)
                process.wait()
            }
            for namespace in [client, gateway, upstream] {
                _ = try? Subprocess.check(["ip", "netns", "del", namespace])
            }
            try? FileManager.default.removeItem(at: work)
        }
    }

    /// What one run of the common traffic produced (deltas over the measured window).
    struct Observation: Equatable {
        var echoes: Int
        var allowedPackets: UInt64
        var allowedBytes: UInt64
        var deniedPackets: UInt64
        var deniedBytes: UInt64
        var denyFindings: Int
        var web: Bool
    }

    static func delta(_ after: [String: UInt64], _ before: [String: UInt64], _ name: String) -> UInt64 {
        (after[name] ?? 0) &- (before[name] ?? 0)
    }

    /// The same traffic for both paths: a warmed-up UDP flow of 150 echoes (300 allowed packets),
    /// three denied datagrams (three findings), one HTTP request (verdict only: TCP packet
    /// counts vary with ACK timing).
    static func commonTraffic(_ lab: Lab) throws -> (Observation, offloaded: UInt64) {
        _ = lab.inClient(["ping", "-c", "2", "-W", "1", lab.upstreamV4])  // neighbours on both sides
        #expect(lab.session(sourcePort: 42000, count: 3, interval: 0.05) == 3, "warm-up flow")
        usleep(200_000)  // the install request is handled within a maintenance tick (20 ms)
        let before = try lab.counters()
        let echoes = lab.session(sourcePort: 42000, count: 150, interval: 0.002)
        for port in 0..<3 { _ = lab.session(sourcePort: 43000 + port, count: 1, interval: 0, port: 7778) }
        usleep(300_000)
        let after = try lab.counters()
        let web = lab.inClient(["curl", "-s", "-m", "3", "http://\(lab.upstreamV4):8080/"]).contains("sluice-upstream")
        let observation = Observation(
            echoes: echoes, allowedPackets: delta(after, before, "allowed_packets"),
            allowedBytes: delta(after, before, "allowed_bytes"), deniedPackets: delta(after, before, "denied_packets"),
            deniedBytes: delta(after, before, "denied_bytes"), denyFindings: try lab.denyFindings(port: 7778), web: web)
        return (observation, delta(after, before, "offloaded_packets"))
    }

    @Test(.enabled(if: GatewayLab.canRun, "needs root, iproute2, nft, curl, python3 and a built sluice; see stderr"))
    func offloadedAndWorkerPathsAgreeAndPolicyChangesTakeEffectAtOnce() throws {
        let lab = try Lab()
        defer { lab.cleanUp() }

        // 1. Pure AF_XDP path.
        try lab.startSluice(["--no-offload"])
        let (workers, workersOffloaded) = try OffloadIntegrationTests.commonTraffic(lab)
        let noOffloadCounters = try lab.counters()
        lab.stopSluice()
        #expect(workersOffloaded == 0, "--no-offload: nothing through the XDP fast path")
        #expect(noOffloadCounters["offload_installs"] == 0)

        // 2. With offload (default), UDP idle timeout 3 s for step 3.
        try lab.startSluice(["--udp-timeout", "3"])
        let (offloaded, carried) = try OffloadIntegrationTests.commonTraffic(lab)
        #expect(workers == offloaded, "both paths: same echoes, counters and findings")
        #expect(workers.echoes == 150 && workers.allowedPackets == 300 && workers.deniedPackets == 3
                    && workers.denyFindings == 3 && workers.web,
                "expected figures: \(workers)")
        #expect(carried >= 250, "most of the 300 packets went through the XDP program: \(carried)")

        // TCP: established data goes through XDP, the FINs reach the workers, the close completes.
        let beforeBulk = try lab.counters()
        let bulk = lab.inClient(["timeout", "10", "python3", "-c", """
            import socket, time
            s = socket.create_connection(("\(lab.upstreamV4)", 9090)); time.sleep(0.1)
            for i in range(500): s.sendall(b"z" * 4096)
            s.shutdown(socket.SHUT_WR); print(s.recv(100).decode())
            """])
        usleep(200_000)
        let afterBulk = try lab.counters()
        #expect(bulk.contains("got 2048000"), "2 MB over an offloaded TCP connection: \(bulk)")
        #expect(OffloadIntegrationTests.delta(afterBulk, beforeBulk, "offloaded_packets") >= 1000)
        #expect(OffloadIntegrationTests.delta(afterBulk, beforeBulk, "xdp_inside_offloadPunted") >= 1, "the FIN")

        // 3. Past the idle timeout (3 s) with packets passing only through XDP: the flow lives on
        // (no second opening), because the maintenance task moves its last-seen time forward.
        let beforeIdle = try lab.counters()
        #expect(lab.session(sourcePort: 44000, count: 20, interval: 0.25) == 20)
        usleep(1_200_000)  // the next harvest (1 s)
        let afterIdle = try lab.counters()
        #expect(OffloadIntegrationTests.delta(afterIdle, beforeIdle, "flows_opened") == 1,
                "one flow opened over 4+ s of offloaded traffic: \(afterIdle)")
        #expect(OffloadIntegrationTests.delta(afterIdle, beforeIdle, "offloaded_packets") >= 30)

        // 4. A new policy that still allows the flow: its entries are stale at once, the workers
        // judge it again (no cut), and it is offloaded again under the new generation.
        #expect(lab.session(sourcePort: 45000, count: 5, interval: 0.05) == 5)
        usleep(200_000)
        let beforeSwap = try lab.counters()
        let widened = OffloadIntegrationTests.basePolicy.replacingOccurrences(
            of: "{\"id\": \"web\"",
            with: "{\"id\": \"extra\", \"action\": \"allow\", \"match\": {\"proto\": \"udp\", \"dst_ports\": [7779]}},\n"
                + "{\"id\": \"web\"")
            .replacingOccurrences(of: "offload-test", with: "offload-widened")
        let widenedAnswer = try lab.api("/api/v1/policies", post: widened)
        #expect(widenedAnswer.contains("confirmed"), "policy deployed: \(widenedAnswer)")
        #expect(lab.session(sourcePort: 45000, count: 20, interval: 0.02) == 20, "the flow survives the swap")
        usleep(300_000)
        let afterSwap = try lab.counters()
        let stale = OffloadIntegrationTests.delta(afterSwap, beforeSwap, "xdp_inside_offloadStale")
        #expect(stale >= 1, "stale entries went back to the workers: \(afterSwap)")
        #expect(OffloadIntegrationTests.delta(afterSwap, beforeSwap, "flows_cut") == 0)
        #expect(OffloadIntegrationTests.delta(afterSwap, beforeSwap, "offload_installs") >= 1, "offloaded again")
        #expect(OffloadIntegrationTests.delta(afterSwap, beforeSwap, "offloaded_packets") >= 20)

        // 5. A policy that denies UDP 7777: the offloaded flow is cut at its next packet.
        let tcpOnly = OffloadIntegrationTests.basePolicy.replacingOccurrences(
            of: "{\"id\": \"udp-echo\", \"action\": \"allow\", \"match\": {\"proto\": \"udp\", \"dst_ports\": [7777]}},",
            with: "").replacingOccurrences(of: "offload-test", with: "offload-tcp-only")
        let tcpOnlyAnswer = try lab.api("/api/v1/policies", post: tcpOnly)
        #expect(tcpOnlyAnswer.contains("confirmed"), "policy deployed: \(tcpOnlyAnswer)")
        #expect(lab.session(sourcePort: 45000, count: 3, interval: 0.05) == 0, "the offloaded flow is cut")
        let afterCut = try lab.counters()
        #expect(OffloadIntegrationTests.delta(afterCut, afterSwap, "flows_cut") == 1)

        // 6. Events off (performance mode disabled): a denied flow is dropped by the program
        // itself, and every one of its packets still counts as denied.
        _ = try lab.api("/api/v1/settings/performance-mode", post: "{\"enabled\": false}", method: "PUT")
        let beforeDeny = try lab.counters()
        _ = lab.inClient(["python3", "-c", """
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("", 46000))
            for i in range(40): s.sendto(b"d", ("\(lab.upstreamV4)", 7778)); time.sleep(0.005)
            """])
        usleep(300_000)
        let afterDeny = try lab.counters()
        #expect(OffloadIntegrationTests.delta(afterDeny, beforeDeny, "denied_packets") == 40, "\(afterDeny)")
        #expect(OffloadIntegrationTests.delta(afterDeny, beforeDeny, "xdp_inside_offloadDropped") >= 30,
                "dropped in XDP after the first packets: \(afterDeny)")
        lab.stopSluice()
    }
}

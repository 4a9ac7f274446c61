// Root-only end-to-end test of the gateway: `sluice run --dataplane xdp` as a process in a
// gateway namespace between a client and an upstream namespace (GatewayTopology).
//
// The policy file allows UDP 7777, TCP 8080 and ICMP echo from the client network; everything
// else is denied. Checked: allowed traffic (UDP, TCP with curl, ping, IPv6) gets through with
// its replies, denied traffic does not, unsolicited inbound is dropped, flows use both queues,
// and SIGTERM detaches XDP and removes the nftables table. Everything it creates is removed by
// GatewayTopology.close(), pass or fail. Skipped loudly when not root.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SluiceProcess
import Testing
@testable import SluiceDataplane

enum GatewayLab {
    /// Why the gateway test cannot run here, or nil.
    static let missingReason: String? = {
        if let reason = IntegrationEnvironment.missingReason { return reason }
        for tool in ["nft", "curl", "python3", "ethtool"] where !IntegrationEnvironment.toolPath.split(separator: ":")
            .contains(where: { access("\($0)/\(tool)", X_OK) == 0 }) {
            return "\(tool) not installed (run scripts/setup.sh)"
        }
        if sluiceExecutable == nil { return "the sluice executable is not built (swift build)" }
        return nil
    }()

    static var canRun: Bool {
        if let missingReason {
            FileHandle.standardError.write("SKIPPING gateway integration test: \(missingReason)\n".data(using: .utf8)!)
            return false
        }
        return true
    }

    /// `sluice` next to the test bundle (same build directory).
    static let sluiceExecutable: String? = {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        var candidates: [String] = []
        if length > 0 {
            let path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            var directory = URL(fileURLWithPath: path).deletingLastPathComponent()
            // .../debug/SluicePackageTests.xctest, possibly a bundle directory one level deeper.
            for _ in 0..<3 {
                candidates.append(directory.appendingPathComponent("sluice").path)
                directory = directory.deletingLastPathComponent()
            }
        }
        candidates.append(IntegrationEnvironment.repositoryRoot + "/.build/debug/sluice")
        return candidates.first { access($0, X_OK) == 0 && !$0.hasSuffix(".xctest") }
    }()
}

@Suite(.serialized) struct GatewayIntegrationTests {
    static let policy = """
    {"mode": "enforce", "name": "lab-test", "policy": {"default_policy": "deny", "source_groups": [
      {"id": "clients", "sources": {"cidrs": ["10.77.0.0/16", "fd77::/16"]}, "rules": [
        {"id": "udp-echo", "action": "allow", "match": {"proto": "udp", "dst_ports": [7777]}},
        {"id": "web", "action": "allow", "match": {"proto": "tcp", "dst_ports": [8080]}},
        {"id": "ping", "action": "allow", "match": {"proto": "icmp"}},
        {"id": "ping6", "action": "allow", "match": {"proto": "icmpv6"}}
      ]}]}}
    """

    @Test(.enabled(if: GatewayLab.canRun, "needs root, iproute2, nft, curl, python3 and a built sluice; see stderr"))
    func gatewayForwardsWhatThePolicyAllowsAndNothingElse() throws {
        let lab = try GatewayTopology(policy: GatewayIntegrationTests.policy)
        defer { lab.close() }
        let gateway = lab.gateway, upstream = lab.upstream, client = lab.client
        let clientV4 = lab.clientV4, upstreamV4 = lab.upstreamV4, upstreamV6 = lab.upstreamV6
        let gatewayInV4 = lab.gatewayInV4
        let sluice = lab.sluice!
        func log() -> String { lab.log() }
        func inClient(_ arguments: [String]) -> (ok: Bool, output: String) { lab.inClient(arguments) }
        func eventually(_ attempts: Int = 5, _ probe: () -> Bool) -> Bool { lab.eventually(attempts, probe) }
        try #require(log().contains("policy file in force"), "sluice run started: \(log())")
        #expect(try Subprocess.check(["ip", "-n", gateway, "link", "show", "gin"]).contains("xdp"))
        let table = try Subprocess.check(["ip", "netns", "exec", gateway, "nft", "list", "table", "inet", "sluice"])
        #expect(table.contains("drop"))

        let udpV4 = eventually { inClient(["python3", "-c", GatewayTopology.udpProbe(upstreamV4, 7777)]).output
            .contains("echo:probe") }
        #expect(udpV4, "allowed UDP and its reply pass; log: \(log())")
        let deniedUDP = inClient(["python3", "-c", GatewayTopology.udpProbe(upstreamV4, 7778)])
        #expect(deniedUDP.output.contains("timeout"),
                "denied UDP port")
        let http = eventually { inClient(["curl", "-s", "-m", "3", "http://\(upstreamV4):8080/"]).output
            .contains("sluice-upstream") }
        #expect(http, "allowed TCP (curl)")
        #expect(!inClient(["curl", "-s", "-m", "2", "http://\(upstreamV4):8081/"]).ok, "denied TCP port")
        #expect(eventually { inClient(["ping", "-c", "1", "-W", "2", upstreamV4]).ok }, "ICMP echo")
        // TTL 1: the gateway answers with time exceeded from its inside address.
        let expiring = inClient(["bash", "-c", "ping -c 1 -t 1 -W 2 \(upstreamV4); true"])
        #expect(expiring.output.contains("From \(gatewayInV4)") && expiring.output.contains("Time to live exceeded"),
                "ICMP time exceeded: \(expiring.output)")
        let http6 = eventually { inClient(["curl", "-s", "-m", "3", "-g", "http://[\(upstreamV6)]:8080/"]).output
            .contains("sluice-upstream") }
        #expect(http6, "IPv6 TCP")
        #expect(eventually { inClient(["ping", "-6", "-c", "1", "-W", "2", upstreamV6]).ok }, "ICMPv6 echo")
        let deniedUDP6 = inClient(["python3", "-c", GatewayTopology.udpProbe(upstreamV6, 7778)])
        #expect(deniedUDP6.output.contains("timeout"))

        // Unsolicited inbound: the upstream cannot reach the client, neither by ping nor by UDP.
        let clientListener = try lab.start(in: client, ["python3", "-c", """
            import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("", 9999)); s.settimeout(3)
            try: print("got", s.recvfrom(100)[0])
            except socket.timeout: print("nothing")
            """])
        usleep(300_000)
        _ = try? Subprocess.check(["ip", "netns", "exec", upstream, "python3", "-c",
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                + "s.sendto(b'x', ('\(clientV4)', 9999))"])
        #expect(!((try? Subprocess.check(["ip", "netns", "exec", upstream, "ping", "-c", "1", "-W", "1", clientV4])) != nil),
                "unsolicited ping from the outside")
        let heard = clientListener.wait().stdout
        #expect(heard.contains("nothing"), "unsolicited UDP from the outside: \(heard)")

        // Many flows (distinct source ports) spread over both rx queues of the inside interface.
        for port in 0..<16 {
            let probe = GatewayTopology.udpProbe(upstreamV4, 7777, sourcePort: 41000 + port)
            _ = inClient(["python3", "-c", probe])
        }
        let stats = (try? Subprocess.check(["ip", "netns", "exec", gateway, "ethtool", "-S", "gin"])) ?? ""
        let perQueue = (0..<2).map { queue in
            stats.split(separator: "\n").first { $0.contains("rx_queue_\(queue)_xdp_redirect") }
                .flatMap { UInt64($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) } ?? 0
        }
        #expect(perQueue.allSatisfy { $0 > 0 }, "both queues received transit traffic: \(perQueue)")

        // A policy change through the API cuts a live flow it now denies; others keep working.
        // One client process keeps a UDP socket (one 5-tuple) and probes before and after.
        let flow = try lab.start(in: client, ["python3", "-u", "-c", """
            import socket, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
            def probe():
                for _ in range(5):
                    s.sendto(b"flow", ("\(upstreamV4)", 7777))
                    try: return s.recvfrom(100)[0].decode()
                    except socket.timeout: pass
                return "timeout"
            print("before", probe(), flush=True)
            sys.stdin.readline()
            s.settimeout(0.5)
            print("after", probe(), flush=True)
            """], stdin: .pipe)
        let before = flow.waitForOutput(timeout: 30) { $0.contains("\n") }
        #expect(before.contains("before echo:flow"), "the UDP flow works before the change: \(before)")
        let token = try lab.adminToken()
        let apiURL = lab.apiURL
        let tcpOnly = GatewayIntegrationTests.policy.replacingOccurrences(
            of: "{\"id\": \"udp-echo\", \"action\": \"allow\", "
                + "\"match\": {\"proto\": \"udp\", \"dst_ports\": [7777]}},",
            with: "")
        #expect(!tcpOnly.contains("udp-echo"))
        let write = try Subprocess.check(["ip", "netns", "exec", gateway, "curl", "-s", "-f", "-X", "POST",
                                          "-H", "Authorization: Bearer \(token)",
                                          "-H", "Content-Type: application/json",
                                          "--data", tcpOnly, "\(apiURL)/api/v1/policies"])
        #expect(write.contains("confirmed"), "the API deployed the new policy and the workers confirmed: \(write)")
        // The earlier denies reached the API as findings (worker event rings → FindingRecorder).
        let findings = try Subprocess.check(["ip", "netns", "exec", gateway, "curl", "-s", "-f",
                                             "-H", "Authorization: Bearer \(token)", "\(apiURL)/api/v1/audit/findings"])
        #expect(findings.contains("packet_deny") && findings.contains("7778") && findings.contains(upstreamV4),
                "denied UDP 7778 is an audit finding: \(findings)")
        flow.write("go\n")
        let after = String(flow.wait().stdout.dropFirst(before.count))
        #expect(after.contains("after timeout"), "the live UDP flow is cut by the new policy: \(after)")
        #expect(inClient(["curl", "-s", "-m", "3", "http://\(upstreamV4):8080/"]).output.contains("sluice-upstream"),
                "TCP 8080 is still allowed")

        // SIGTERM: graceful shutdown detaches XDP and removes the forward-path block.
        sluice.kill(SIGTERM)
        let stopDeadline = Date().addingTimeInterval(15)
        while sluice.isRunning && Date() < stopDeadline { usleep(100_000) }
        #expect(!sluice.isRunning, "sluice stopped on SIGTERM; log: \(log())")
        if !sluice.isRunning { #expect(sluice.status == 0, "clean exit; log: \(log())") }
        #expect(!(try Subprocess.check(["ip", "-n", gateway, "link", "show", "gin"])).contains("xdp"), "XDP detached")
        #expect((try? Subprocess.check(["ip", "netns", "exec", gateway, "nft", "list", "table", "inet", "sluice"]))
                    == nil,
                "nftables table removed")
    }
}
